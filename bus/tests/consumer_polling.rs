//! Polling: what the consumer receives, when, and how much it holds before handlers can run it.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};
use tokio::time::Instant;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn slow_handlers_do_not_hold_back_polling_while_slots_are_free() {
    let bus = bus_with_queue("head-of-line", 3, SECS(30)).await;
    let done: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let handler = {
        let done = done.clone();
        handler_fn(move |d: Delivery| {
            let done = done.clone();
            async move {
                if d.message.body.starts_with("slow") {
                    tokio::time::sleep(SECS(120)).await;
                }
                done.lock()
                    .unwrap()
                    .push((d.message.body.clone(), Instant::now()));
                Ok(())
            }
        })
    };
    // One poller, ten messages in flight at most: three slow handlers leave seven slots free.
    let running = spawn(
        Consumer::new(bus.clone(), "head-of-line")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    send_all(
        &bus,
        "head-of-line",
        (0..3)
            .map(|i| OutgoingMessage::new(format!("slow{i}")))
            .collect(),
    )
    .await;
    tokio::time::sleep(SECS(1)).await;
    let sent = Instant::now();
    send_all(
        &bus,
        "head-of-line",
        (0..5)
            .map(|i| OutgoingMessage::new(format!("fast{i}")))
            .collect(),
    )
    .await;
    wait_for(SECS(300), || async {
        done.lock()
            .unwrap()
            .iter()
            .filter(|(b, _)| b.starts_with("fast"))
            .count()
            == 5
    })
    .await;
    let last_fast = done
        .lock()
        .unwrap()
        .iter()
        .filter(|(b, _)| b.starts_with("fast"))
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    assert!(
        last_fast - sent <= SECS(5),
        "fast messages waited {:?} behind the slow ones",
        last_fast - sent
    );
    wait_drained(&bus, "head-of-line", SECS(300)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(report.acked, 8, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_release_at_the_last_receive_dead_letters_with_its_reason() {
    // maxReceiveCount 1: the first receive is the last one.
    let bus = bus_with_queue("last-receive", 1, SECS(30)).await;
    send_all(
        &bus,
        "last-receive",
        vec![
            OutgoingMessage::new("first"),
            OutgoingMessage::new("second"),
        ],
    )
    .await;
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(SECS(10)).await;
        Ok(())
    });
    // One handler at a time, two messages in flight: the second waits, prefetched.
    let running = spawn(
        Consumer::new(bus.clone(), "last-receive")
            .handler(handler)
            .configure(|c| {
                c.pollers = 1;
                c.concurrency = Some(1);
                c.max_in_flight = Some(2);
            }),
    );
    tokio::time::sleep(SECS(2)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    // Whatever is left in the source queue is received once more (the queue's redrive would
    // move a message past its last receive to the DLQ with no reason).
    let left = peek_all(&bus, "last-receive").await;
    assert!(left.is_empty(), "{left:?}");
    let dead = peek_all(&bus, &dlq_name("last-receive")).await;
    assert_eq!(dead.len(), 1, "{report}");
    let reason = DeadLetterReason::from_message(&dead[0]).expect("a dead letter with its reason");
    assert_eq!(reason.kind, "released_at_last_receive");
    assert_eq!((report.acked, report.dead_lettered), (1, 1), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_delete_outage_pauses_polling_instead_of_piling_up_messages() {
    let bus = bus_with_queue("no-deletes", 5, SECS(30)).await;
    send_all(
        &bus,
        "no-deletes",
        (0..300)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect(),
    )
    .await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(faults::Call::Delete, faults::Fault::throttled(), None);
    let handled = Arc::new(Mutex::new(0usize));
    let handler = {
        let handled = handled.clone();
        handler_fn(move |_d: Delivery| {
            let handled = handled.clone();
            async move {
                *handled.lock().unwrap() += 1;
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(faulty.clone(), "no-deletes")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    tokio::time::sleep(SECS(120)).await;
    let during = *handled.lock().unwrap();
    // One poller, 10 in flight: at most 10 times that many messages are held unsettled.
    assert!(
        during <= 100,
        "{during} messages handled while none could be deleted"
    );
    faulty.clear();
    wait_drained(&bus, "no-deletes", SECS(600)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(report.acked, 300, "{report}");
}
