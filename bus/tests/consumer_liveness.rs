//! A consumer's liveness: its status names a loop that stopped turning (`stalled`), and only
//! then: a poller waiting for busy handlers is not stalled.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fleet_bus::Consumer;
use fleet_bus::consumer::{Delivery, handler_fn};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn ok_handler() -> fleet_bus::consumer::MessageHandler {
    handler_fn(|_d: Delivery| async move { Ok(()) })
}

#[tokio::test(start_paused = true)]
async fn a_receive_that_hangs_past_its_wait_grace_and_five_seconds_is_a_stall() {
    let bus = bus_with_queue("hung", 3, SECS(30)).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(faults::Call::Receive, faults::Fault::Hang(SECS(3600)), None);
    let handle = Consumer::new(faulty, "hung")
        .handler(ok_handler())
        .configure(|c| {
            c.pollers = 1;
            c.wait_time = SECS(1);
        })
        .start()
        .await
        .unwrap();
    // The wait (1 s) + the receive grace (30 s) + 5 s.
    tokio::time::sleep(SECS(35)).await;
    assert_eq!(handle.status().stalled, None);
    tokio::time::sleep(SECS(2)).await;
    let status = handle.status();
    let why = status.stalled.expect("stalled");
    assert!(why.contains("receive"), "{why}");
    assert!(!status.polling, "no receive ever answered");
    let report = handle.shutdown().await.unwrap();
    assert!(report.is_balanced(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_receive_abandoned_at_its_limit_is_a_failure_not_a_stall() {
    let bus = bus_with_queue("hung-sqs", 3, SECS(30)).await;
    let faulty = faults::Faulty::new(bus.clone()).receives_not_cancel_safe();
    faulty.inject(
        faults::Call::Receive,
        faults::Fault::Hang(SECS(3600)),
        Some(1),
    );
    let handle = Consumer::new(faulty, "hung-sqs")
        .handler(ok_handler())
        .configure(|c| {
            c.pollers = 1;
            c.wait_time = SECS(1);
        })
        .start()
        .await
        .unwrap();
    for _ in 0..40 {
        tokio::time::sleep(SECS(1)).await;
        assert_eq!(handle.status().stalled, None);
    }
    let status = handle.status();
    assert!(
        status.polling,
        "the next receive answered after the abandoned one: {status:?}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn all_handlers_busy_is_not_a_stall() {
    let bus = bus_with_queue("busy", 3, SECS(30)).await;
    send_all(&bus, "busy", numbered(5)).await;
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(SECS(3600)).await;
        Ok(())
    });
    let handle = Consumer::new(bus.clone(), "busy")
        .handler(handler)
        .configure(|c| {
            c.pollers = 2;
            c.max_in_flight = Some(1);
        })
        .start()
        .await
        .unwrap();
    // Ten minutes with the only handler slot taken: the pollers wait for it, the settler keeps
    // the lease.
    for _ in 0..60 {
        tokio::time::sleep(SECS(10)).await;
        let status = handle.status();
        assert_eq!(status.stalled, None, "{status:?}");
    }
    assert_eq!(counts(&bus, "busy").await.in_flight, 1);
    let report = handle.shutdown().await.unwrap();
    assert!(report.is_balanced(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_on_an_empty_queue_counts_as_polling_after_a_second() {
    let bus = bus_with_queue("empty", 3, SECS(30)).await;
    let handle = Consumer::new(bus, "empty")
        .handler(ok_handler())
        .configure(|c| {
            c.pollers = 1;
            c.wait_time = SECS(20);
        })
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handle.status().polling, "{:?}", handle.status());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = handle.status();
    assert!(status.polling, "the long poll was accepted: {status:?}");
    assert_eq!(status.since_last_receive, None, "nothing answered yet");
    handle.shutdown().await.unwrap();
}
