//! Graceful shutdown under load: every message is either processed and deleted, or back in the
//! queue and visible. Nothing is lost, nothing waits out a visibility timeout.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};

const TOTAL: usize = 300;

fn work_time(body: &str) -> Duration {
    let n: u64 = body.trim_start_matches('m').parse().unwrap_or(0);
    Duration::from_millis(200 + (n * 37) % 1800)
}

/// Runs the load, sends SIGTERM after 3 s; returns the report, how many handlers finished, how
/// many started, and the queue's counts afterwards.
async fn shutdown_under_load(
    grace: Duration,
) -> (
    fleet_bus::ShutdownReport,
    usize,
    usize,
    fleet_bus::QueueCounts,
) {
    let bus = bus_with_queue("busy", 5, Duration::from_secs(30)).await;
    send_all(
        &bus,
        "busy",
        (0..TOTAL)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect(),
    )
    .await;
    let done: Arc<Mutex<HashSet<String>>> = Arc::default();
    let started: Arc<Mutex<HashSet<String>>> = Arc::default();
    let handler = {
        let (done, started) = (done.clone(), started.clone());
        handler_fn(move |d: Delivery| {
            let (done, started) = (done.clone(), started.clone());
            async move {
                started.lock().unwrap().insert(d.message.body.clone());
                tokio::time::sleep(work_time(&d.message.body)).await;
                done.lock().unwrap().insert(d.message.body.clone());
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(bus.clone(), "busy")
            .handler(handler)
            .configure(|c| {
                c.pollers = 3;
                c.max_in_flight = Some(60);
                c.concurrency = Some(20);
                c.shutdown_timeout = grace;
            }),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // SIGTERM.
    let report = running.stop().await;
    let processed = done.lock().unwrap().len();
    let started = started.lock().unwrap().len();
    println!("grace {grace:?}: {report}; started {started}, processed {processed}");
    (report, processed, started, counts(&bus, "busy").await)
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_handlers_finish_and_releases_the_rest() {
    let (report, processed, started, after) = shutdown_under_load(Duration::from_secs(30)).await;
    assert_eq!(
        started, processed,
        "with a long grace every started handler finishes"
    );
    assert!(
        report.received >= 60,
        "the consumer was under load: {report}"
    );
    assert_eq!(report.unaccounted(), 0, "{report}");
    assert_eq!(
        report.acked as usize, processed,
        "every finished handler's message was deleted"
    );
    assert!(
        report.released > 0,
        "prefetched messages were released: {report}"
    );
    assert_eq!(
        after.in_flight, 0,
        "nothing left waiting out a visibility timeout"
    );
    assert_eq!(after.delayed, 0);
    assert_eq!(
        processed + after.visible as usize,
        TOTAL,
        "lost: {}",
        TOTAL - processed - after.visible as usize
    );
}

#[tokio::test(start_paused = true)]
async fn handlers_past_the_shutdown_deadline_are_cancelled_and_their_messages_released() {
    let (report, processed, started, after) = shutdown_under_load(Duration::from_millis(100)).await;
    assert!(
        started > processed,
        "some handlers were cut off by the deadline ({started} started, {processed} finished)"
    );
    assert!(
        report.released as usize >= started - processed,
        "their messages were released: {report}"
    );
    assert_eq!(report.unaccounted(), 0, "{report}");
    assert_eq!(report.acked as usize, processed);
    assert_eq!(after.in_flight, 0);
    assert_eq!(
        processed + after.visible as usize,
        TOTAL,
        "lost: {}",
        TOTAL - processed - after.visible as usize
    );
}
