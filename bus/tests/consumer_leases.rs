//! Visibility leases: long work keeps its message, a lost lease cancels the handler.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn a_handler_running_five_visibility_timeouts_keeps_its_message() {
    let bus = bus_with_queue("long-work", 3, SECS(10)).await;
    send_all(
        &bus,
        "long-work",
        vec![OutgoingMessage::new("render the report")],
    )
    .await;
    let runs = Arc::new(AtomicU32::new(0));
    let handler = {
        let runs = runs.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(SECS(50)).await;
                Ok(())
            }
        })
    };
    // Two consumers on the same queue: without leases the second would get the message after 10 s.
    let a = spawn(Consumer::new(bus.clone(), "long-work").handler(handler.clone()));
    let b = spawn(Consumer::new(bus.clone(), "long-work").handler(handler));
    tokio::time::sleep(SECS(30)).await;
    let c = counts(&bus, "long-work").await;
    assert_eq!((c.visible, c.in_flight), (0, 1), "still leased mid-way");
    wait_drained(&bus, "long-work", SECS(120)).await;
    let (ra, rb) = (a.stop().await, b.stop().await);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "redelivered while still being handled"
    );
    assert_eq!(ra.acked + rb.acked, 1, "{ra} / {rb}");
    assert!(
        ra.extensions + rb.extensions >= 5,
        "50 s of work under a 10 s lease: {ra} / {rb}"
    );
    assert_eq!(counts(&bus, &dlq_name("long-work")).await.visible, 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_cancels_the_handler_and_is_reported() {
    let bus = bus_with_queue("lost", 3, SECS(10)).await;
    send_all(&bus, "lost", vec![OutgoingMessage::new("doomed")]).await;
    let finished = Arc::new(AtomicBool::new(false));
    let cancelled_seen = Arc::new(AtomicBool::new(false));
    let handler = {
        let (finished, cancelled_seen) = (finished.clone(), cancelled_seen.clone());
        handler_fn(move |d: Delivery| {
            let (finished, cancelled_seen) = (finished.clone(), cancelled_seen.clone());
            async move {
                let token = d.cancel.clone();
                tokio::spawn(async move {
                    token.cancelled().await;
                    cancelled_seen.store(true, Ordering::SeqCst);
                });
                tokio::time::sleep(SECS(60)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let running = spawn(Consumer::new(bus.clone(), "lost").handler(handler));
    tokio::time::sleep(SECS(2)).await;
    // Someone purges the queue: the receipt becomes invalid and the next extension fails.
    bus.embedded_queue("lost").unwrap().purge();
    tokio::time::sleep(SECS(90)).await;
    let report = running.stop().await;
    assert!(
        cancelled_seen.load(Ordering::SeqCst),
        "the delivery's cancel token fired"
    );
    assert!(
        !finished.load(Ordering::SeqCst),
        "the handler was cancelled, not run to the end"
    );
    assert_eq!(
        (report.received, report.lease_lost, report.acked),
        (1, 1, 0),
        "{report}"
    );
    assert_eq!(report.unaccounted(), 0);
}
