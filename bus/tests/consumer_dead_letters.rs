//! Dead letters: each reaches the dead-letter queue once, with its reason, whatever fails on the
//! way; a failed dead-letter send is counted as what it is.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn a_failed_dead_letter_send_is_counted_as_a_failed_settlement() {
    let bus = bus_with_queue("dl-fails", 5, SECS(30)).await;
    send_all(&bus, "dl-fails", vec![OutgoingMessage::new("bad")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject_on(
        Some(&dlq_name("dl-fails")),
        faults::Call::Send,
        faults::Fault::Fail {
            code: "KMS.AccessDenied",
            retryable: false,
        },
        Some(1),
    );
    let handler = handler_fn(|_d: Delivery| async move {
        Err(HandlerError::permanent("no such customer").with_label("unknown_customer"))
    });
    let running = spawn(
        Consumer::new(faulty.clone(), "dl-fails")
            .handler(handler)
            .configure(|c| c.retry = no_jitter(1)),
    );
    wait_for(SECS(120), || async {
        counts(&bus, &dlq_name("dl-fails")).await.visible == 1
    })
    .await;
    wait_drained(&bus, "dl-fails", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(
        (
            report.received,
            report.settle_failed,
            report.retried,
            report.dead_lettered
        ),
        (2, 1, 0, 1),
        "{report}"
    );
    assert_eq!(
        report.settle_failed_in_drain, 0,
        "the send failed long before the shutdown: {report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
}

/// A settlement given up while the consumer drains is one the drain left undone; one given up
/// before the shutdown is not (`fleet run`'s exit code is decided on the former). The drain
/// begins with the shutdown: while a slow handler still runs, a quick one's failed dead-letter
/// send is the drain's too.
#[tokio::test(start_paused = true)]
async fn a_dead_letter_send_that_fails_during_the_drain_is_counted_as_the_drains() {
    let bus = bus_with_queue("dl-drain", 5, SECS(30)).await;
    send_all(
        &bus,
        "dl-drain",
        vec![
            OutgoingMessage::new("quick-bad"),
            OutgoingMessage::new("slow-ok"),
        ],
    )
    .await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject_on(
        Some(&dlq_name("dl-drain")),
        faults::Call::Send,
        faults::Fault::Fail {
            code: "KMS.AccessDenied",
            retryable: false,
        },
        Some(1),
    );
    let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let handler = {
        let started = started.clone();
        handler_fn(move |d: Delivery| {
            let started = started.clone();
            async move {
                started.add_permits(1);
                if d.message.body == "slow-ok" {
                    tokio::time::sleep(SECS(5)).await;
                    return Ok(());
                }
                tokio::time::sleep(SECS(1)).await;
                Err(HandlerError::permanent("no such customer").with_label("unknown_customer"))
            }
        })
    };
    let running = spawn(
        Consumer::new(faulty.clone(), "dl-drain")
            .handler(handler)
            .configure(|c| c.retry = no_jitter(1)),
    );
    let _both = started.acquire_many(2).await.unwrap();
    // SIGTERM while both run: the quick one's verdict, and its failed send, come while the slow
    // one still runs, before the settler hears the drain's deadline.
    let report = running.stop().await;
    assert_eq!(
        (
            report.received,
            report.acked,
            report.settle_failed,
            report.settle_failed_in_drain
        ),
        (2, 1, 1, 1),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_message_with_ten_attributes_reaches_the_dead_letter_queue_with_its_reason() {
    use fleet_bus::AttributeValue;
    use fleet_bus::consumer::dead_letter::{digest_of, note_of};
    let bus = bus_with_queue("crowded", 3, SECS(30)).await;
    let mut m = OutgoingMessage::new("{\"type\": \"order.paid\"}");
    for i in 0..10 {
        m = m.attribute(format!("a{i}"), AttributeValue::string("v"));
    }
    send_all(&bus, "crowded", vec![m.clone()]).await;
    let handler = handler_fn(|_d: Delivery| async move {
        Err(HandlerError::permanent("no handler for it").with_label("unknown_type"))
    });
    let running = spawn(Consumer::new(bus.clone(), "crowded").handler(handler));
    wait_for(SECS(60), || async {
        counts(&bus, &dlq_name("crowded")).await.visible == 2
    })
    .await;
    let report = running.stop().await;
    assert_eq!((report.received, report.dead_lettered), (1, 1), "{report}");
    let dead = peek_all(&bus, &dlq_name("crowded")).await;
    let (notes, letters): (Vec<_>, Vec<_>) = dead.iter().partition(|d| note_of(d).is_some());
    assert_eq!((notes.len(), letters.len()), (1, 1), "{dead:?}");
    assert_eq!(
        letters[0].attributes, m.attributes,
        "the message's own attributes, untouched"
    );
    let note = note_of(notes[0]).unwrap();
    assert_eq!(
        note.digest,
        digest_of(&letters[0].body, &letters[0].attributes)
    );
    assert_eq!(note.reason.kind, "unknown_type");
    assert_eq!(note.reason.queue, "crowded");
}

#[tokio::test(start_paused = true)]
async fn copies_of_one_dead_letter_carry_the_same_source_id() {
    let bus = bus_with_queue("copied", 5, SECS(10)).await;
    send_all(&bus, "copied", vec![OutgoingMessage::new("bad")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // The source delete after the first dead-letter send is refused: the message comes back and
    // is dead-lettered again.
    faulty.inject_on(
        Some("copied"),
        faults::Call::Delete,
        faults::Fault::Fail {
            code: "AccessDenied",
            retryable: false,
        },
        Some(1),
    );
    let handler = handler_fn(|_d: Delivery| async move {
        Err(HandlerError::permanent("bad input").with_label("invalid_input"))
    });
    let running = spawn(Consumer::new(faulty.clone(), "copied").handler(handler));
    wait_for(SECS(120), || async {
        counts(&bus, &dlq_name("copied")).await.visible == 2
    })
    .await;
    wait_drained(&bus, "copied", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    let dead = peek_all(&bus, &dlq_name("copied")).await;
    let ids: Vec<String> = dead
        .iter()
        .map(|d| DeadLetterReason::from_message(d).unwrap().message_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids[0].is_empty() && ids[0] == ids[1], "{ids:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_sent_just_before_its_lease_is_given_up_is_still_deleted() {
    let bus = bus_with_queue("late-dead-letter", 3, SECS(10)).await;
    send_all(&bus, "late-dead-letter", vec![OutgoingMessage::new("bad")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // No extension succeeds, and the dead-letter send lands about 40 ms before the lease is
    // given up (at 7 s): the source delete queued behind it must still be sent.
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::throttled(),
        None,
    );
    faulty.inject_on(
        Some(&dlq_name("late-dead-letter")),
        faults::Call::Send,
        faults::Fault::Hang(Duration::from_millis(60)),
        None,
    );
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(Duration::from_millis(6800)).await;
        Err(HandlerError::permanent("bad input").with_label("invalid_input"))
    });
    let running = spawn(
        Consumer::new(faulty.clone(), "late-dead-letter")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    tokio::time::sleep(SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    let dead = peek_all(&bus, &dlq_name("late-dead-letter")).await;
    assert_eq!(dead.len(), 1, "one dead letter, not copies: {report}");
    assert_eq!((report.received, report.dead_lettered), (1, 1), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_refused_at_the_last_receive_is_tried_again_not_handed_back() {
    // maxReceiveCount 1: handing the message back would let the queue's redrive move it with
    // no reason on its next receive.
    let bus = bus_with_queue("refused-last", 1, SECS(30)).await;
    send_all(&bus, "refused-last", vec![OutgoingMessage::new("bad")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject_on(
        Some(&dlq_name("refused-last")),
        faults::Call::Send,
        faults::Fault::Fail {
            code: "KMS.KMSInvalidStateException",
            retryable: false,
        },
        Some(3),
    );
    let handler = handler_fn(|_d: Delivery| async move {
        Err(HandlerError::permanent("bad input").with_label("invalid_input"))
    });
    let running = spawn(Consumer::new(faulty.clone(), "refused-last").handler(handler));
    wait_for(SECS(120), || async {
        counts(&bus, &dlq_name("refused-last")).await.visible == 1
    })
    .await;
    wait_drained(&bus, "refused-last", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!((report.received, report.dead_lettered), (1, 1), "{report}");
    let dead = peek_all(&bus, &dlq_name("refused-last")).await;
    assert_eq!(
        DeadLetterReason::from_message(&dead[0]).map(|r| r.kind),
        Some("invalid_input".to_owned()),
        "the dead letter carries its reason"
    );
}
