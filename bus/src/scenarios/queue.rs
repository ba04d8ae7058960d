//! Scenarios of a single standard queue.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::{TestBus, ack, own_attributes, receive, receive_after_hidden, receive_n};
use crate::message::{
    AttributeValue, Message, OutgoingMessage, Receipt, ReceiveRequest, VisibilityChange,
};
use crate::topology::QueueDecl;

pub async fn round_trip_with_attributes(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("round-trip")).await;
    let sent = OutgoingMessage::new("{\"hello\":\"wörld\"}")
        .attribute("type", AttributeValue::string("order.placed"))
        .attribute("amount", AttributeValue::number("12.5"))
        .attribute("count", AttributeValue::text("Number.int", "7"))
        .attribute("blob", AttributeValue::binary(vec![0u8, 1, 2, 254, 255]));
    let receipt = q.sender().send(sent.clone()).await.unwrap();
    let got = receive_n(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(
        got.len(),
        1,
        "[{}] message did not arrive",
        bus.features.name
    );
    let m = &got[0];
    assert_eq!(m.id, receipt.message_id);
    assert_eq!(m.body, sent.body);
    assert_eq!(own_attributes(&m.attributes), sent.attributes);
    assert_eq!(m.system.receive_count, 1);
    assert!(m.system.first_received_at.is_some());
    assert_eq!(m.system.message_group_id, None);
    ack(&q, &got).await;
}

pub async fn ack_removes_the_message(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("ack").visibility_timeout(Duration::from_secs(1)))
        .await;
    q.sender().send(OutgoingMessage::new("one")).await.unwrap();
    let got = receive_n(&q, 1, Duration::from_secs(5)).await;
    ack(&q, &got).await;
    // Past the visibility timeout an unacked message would be back; an acked one is not.
    let again = receive(&q, 10, Duration::from_secs(2)).await;
    assert!(
        again.is_empty(),
        "[{}] acked message came back: {again:?}",
        bus.features.name
    );
    let counts = q.admin().describe().await.unwrap().counts;
    assert_eq!(
        (counts.visible, counts.in_flight, counts.delayed),
        (0, 0, 0)
    );
}

pub async fn retry_redelivers_after_the_given_delay(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("retry").visibility_timeout(Duration::from_secs(30)))
        .await;
    q.sender()
        .send(OutgoingMessage::new("retry me"))
        .await
        .unwrap();
    let got = receive_n(&q, 1, Duration::from_secs(5)).await;
    let delay = Duration::from_secs(2);
    let change = VisibilityChange {
        receipt: got[0].receipt.clone(),
        timeout: delay,
    };
    let start = Instant::now();
    let results = q.queue().change_visibility_batch(&[change]).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    let again =
        receive_after_hidden(bus, &q, 1, (start, delay), "redelivered before its delay").await;
    assert_eq!(
        again.len(),
        1,
        "[{}] not redelivered after the delay",
        bus.features.name
    );
    bus.assert_waited(start.elapsed(), delay, "retry delay");
    assert_eq!(again[0].id, got[0].id);
    assert_eq!(again[0].system.receive_count, 2);
    ack(&q, &again).await;
}

pub async fn unacked_message_redelivers_after_visibility_timeout(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("unacked")).await;
    q.sender()
        .send(OutgoingMessage::new("forgotten"))
        .await
        .unwrap();
    let visibility = Duration::from_secs(2);
    let start = Instant::now();
    let got = q
        .queue()
        .receive(&ReceiveRequest::new(1, Duration::from_secs(5)).visibility(visibility))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let again =
        receive_after_hidden(bus, &q, 1, (start, visibility), "visible while in flight").await;
    assert_eq!(
        again.len(),
        1,
        "[{}] not redelivered after the visibility timeout",
        bus.features.name
    );
    bus.assert_waited(start.elapsed(), visibility, "visibility timeout");
    assert_ne!(
        again[0].receipt, got[0].receipt,
        "each receive hands out a new receipt"
    );
    ack(&q, &again).await;
}

pub async fn receive_count_increments(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("count")).await;
    q.sender()
        .send(OutgoingMessage::new("count me"))
        .await
        .unwrap();
    for expected in 1..=3 {
        let got = receive_n(&q, 1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].system.receive_count, expected);
        let release = VisibilityChange {
            receipt: got[0].receipt.clone(),
            timeout: Duration::ZERO,
        };
        let r = q.queue().change_visibility_batch(&[release]).await.unwrap();
        assert!(r[0].is_ok(), "{r:?}");
    }
}

pub async fn redrive_to_dlq_at_max_receive_count(bus: &TestBus) {
    let (q, dlq) = bus
        .queue_with_dlq("redrive", 2, Duration::from_secs(1))
        .await;
    let sent = OutgoingMessage::new("poison").attribute("kind", AttributeValue::string("bad"));
    let id = q.sender().send(sent.clone()).await.unwrap().message_id;
    let mut receives = 0;
    for _ in 0..2 {
        let got = receive_n(&q, 1, Duration::from_secs(5)).await;
        assert_eq!(
            got.len(),
            1,
            "[{}] receive {} of 2 got nothing",
            bus.features.name,
            receives + 1
        );
        receives += 1;
        assert_eq!(got[0].system.receive_count, receives);
    }
    // The third receive attempt moves it instead of delivering it.
    let more = receive(&q, 10, Duration::from_secs(3)).await;
    assert!(more.is_empty(), "delivered past maxReceiveCount: {more:?}");
    let dead = receive_n(&dlq, 1, Duration::from_secs(5)).await;
    assert_eq!(
        dead.len(),
        1,
        "[{}] not in the dead-letter queue",
        bus.features.name
    );
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].body, sent.body);
    assert_eq!(own_attributes(&dead[0].attributes), sent.attributes);
}

pub async fn partial_batch_results(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("partial")).await;
    let batch = vec![
        OutgoingMessage::new("good 1"),
        OutgoingMessage::new("bad delay").delay(Duration::from_secs(901)),
        OutgoingMessage::new("good 2"),
    ];
    let results = q.sender().send_batch(&batch).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().unwrap_err().code,
        "InvalidParameterValue"
    );
    if bus.features.validates_body_characters {
        let r = q
            .sender()
            .send_batch(&[OutgoingMessage::new("nul \u{0} body")])
            .await
            .unwrap();
        assert_eq!(r[0].as_ref().unwrap_err().code, "InvalidMessageContents");
    }
    let got = receive_n(&q, 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    // One good receipt, one that never existed: the good one is deleted, the other reported.
    let receipts = vec![got[0].receipt.clone(), Receipt::new("not-a-receipt")];
    let results = q.queue().delete_batch(&receipts).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().unwrap_err().code,
        "ReceiptHandleIsInvalid"
    );
    let changes = vec![
        VisibilityChange {
            receipt: got[1].receipt.clone(),
            timeout: Duration::ZERO,
        },
        VisibilityChange {
            receipt: Receipt::new("not-a-receipt"),
            timeout: Duration::ZERO,
        },
    ];
    let results = q.queue().change_visibility_batch(&changes).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().unwrap_err().code,
        "ReceiptHandleIsInvalid"
    );
    let left = receive_n(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].body, got[1].body);
}

pub async fn whole_batch_errors(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("whole-batch")).await;
    let eleven = vec![OutgoingMessage::new("x"); 11];
    let err = q.sender().send_batch(&eleven).await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyEntriesInBatchRequest"), "{err}");
    let err = q.sender().send_batch(&[]).await.unwrap_err();
    assert_eq!(err.code(), Some("EmptyBatchRequest"), "{err}");
    let big = "x".repeat(bus.features.max_message_bytes / 2 + 1);
    let err = q
        .sender()
        .send_batch(&[OutgoingMessage::new(big.clone()), OutgoingMessage::new(big)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("BatchRequestTooLong"), "{err}");
    let at_limit = "y".repeat(bus.features.max_message_bytes);
    let ok = q
        .sender()
        .send_batch(&[OutgoingMessage::new(at_limit)])
        .await
        .unwrap();
    assert!(
        ok[0].is_ok(),
        "a message of exactly the limit is accepted: {:?}",
        ok[0]
    );
}

pub async fn per_message_and_queue_delays(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("delay")).await;
    let delay = Duration::from_secs(2);
    let start = Instant::now();
    q.sender()
        .send(OutgoingMessage::new("later").delay(delay))
        .await
        .unwrap();
    q.sender().send(OutgoingMessage::new("now")).await.unwrap();
    // Inside the delay only the undelayed message is there. A receive after it (a loaded
    // broker) may find either first, so what arrives when is checked instead.
    let first = receive_n(&q, 1, Duration::from_secs(5)).await;
    if bus.surely_within(start, delay) {
        assert_eq!(first[0].body, "now", "the undelayed message comes first");
    }
    let counts = q.admin().describe().await.unwrap().counts;
    if bus.surely_within(start, delay) {
        assert_eq!(
            counts.delayed, 1,
            "[{}] counts {counts:?}",
            bus.features.name
        );
    }
    let (later, now) = if first[0].body == "later" {
        (first, receive_n(&q, 1, Duration::from_secs(10)).await)
    } else {
        (receive_n(&q, 1, Duration::from_secs(10)).await, first)
    };
    // Measured once both arrived, which is no earlier than the delayed one did.
    bus.assert_waited(start.elapsed(), delay, "per-message delay");
    assert_eq!(bodies(&later), ["later"]);
    assert_eq!(bodies(&now), ["now"]);

    let slow = bus.queue(QueueDecl::new("queue-delay").delay(delay)).await;
    let start = Instant::now();
    slow.sender()
        .send(OutgoingMessage::new("queued"))
        .await
        .unwrap();
    let got = receive_after_hidden(bus, &slow, 1, (start, delay), "queue delay ignored").await;
    assert_eq!(got.len(), 1);
    bus.assert_waited(start.elapsed(), delay, "queue delay");
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

pub async fn long_poll_returns_as_soon_as_a_message_arrives(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("long-poll")).await;
    let sender = q.sender();
    let after = Duration::from_secs(1);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        sender.send(OutgoingMessage::new("arrived")).await.unwrap();
    });
    let start = Instant::now();
    let got = receive(&q, 10, Duration::from_secs(15)).await;
    let waited = start.elapsed();
    assert_eq!(
        got.len(),
        1,
        "[{}] long poll returned empty",
        bus.features.name
    );
    bus.assert_waited(waited, after, "long poll");
    assert!(
        waited < Duration::from_secs(10),
        "[{}] long poll waited {waited:?} instead of returning on arrival",
        bus.features.name
    );
}

pub async fn visibility_is_capped_at_twelve_hours(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("cap")).await;
    q.sender()
        .send(OutgoingMessage::new("long job"))
        .await
        .unwrap();
    let got = receive_n(&q, 1, Duration::from_secs(5)).await;
    let over = VisibilityChange {
        receipt: got[0].receipt.clone(),
        timeout: crate::limits::MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1),
    };
    let r = q.queue().change_visibility_batch(&[over]).await.unwrap();
    assert!(
        r[0].is_err(),
        "[{}] accepted a visibility over 12 hours",
        bus.features.name
    );
    let max = VisibilityChange {
        receipt: got[0].receipt.clone(),
        timeout: Duration::from_secs(3600),
    };
    let r = q.queue().change_visibility_batch(&[max]).await.unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let err = q
        .queue()
        .receive(&ReceiveRequest::new(11, Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue"), "{err}");
}

pub async fn retention_drops_old_messages(bus: &TestBus) {
    if !bus.features.retention_expiry {
        eprintln!(
            "[{}] retention expiry is not implemented by this transport: checking only that the setting is kept",
            bus.features.name
        );
    }
    let retention = Duration::from_secs(60);
    let q = bus
        .queue(QueueDecl::new("retention").retention(retention))
        .await;
    assert_eq!(q.admin().describe().await.unwrap().retention, retention);
    if !bus.features.retention_expiry {
        return;
    }
    q.sender()
        .send(OutgoingMessage::new("short-lived"))
        .await
        .unwrap();
    tokio::time::sleep(retention + Duration::from_secs(1)).await;
    assert!(
        receive(&q, 10, Duration::ZERO).await.is_empty(),
        "kept past retention"
    );
}

pub async fn concurrent_consumers_lose_nothing(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("concurrent").visibility_timeout(Duration::from_secs(30)))
        .await;
    let n = 40;
    let bodies: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    for chunk in bodies.chunks(10) {
        let batch: Vec<_> = chunk.iter().map(OutgoingMessage::new).collect();
        let results = q.sender().send_batch(&batch).await.unwrap();
        assert!(results.iter().all(Result::is_ok));
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let got = receive(&q, 10, Duration::from_secs(1)).await;
                if got.is_empty() {
                    return seen;
                }
                ack(&q, &got).await;
                seen.extend(got.into_iter().map(|m| m.body));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        n,
        "[{}] lost messages: got {} of {n}",
        bus.features.name,
        distinct.len()
    );
    if bus.features.exclusive_receive {
        assert_eq!(all.len(), n, "a message went to two consumers at once");
    }
}
