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
use tokio::time::Instant;

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
                c.max_in_flight = Some(50);
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
    assert_eq!(report.received, report.settled(), "{report}");
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
    let (report, processed, started, after) = shutdown_under_load(Duration::from_secs(1)).await;
    assert!(
        started > processed,
        "some handlers were cut off by the deadline ({started} started, {processed} finished)"
    );
    assert!(
        report.released as usize >= started - processed,
        "their messages were released: {report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(report.acked as usize, processed);
    assert_eq!(after.in_flight, 0);
    assert_eq!(
        processed + after.visible as usize,
        TOTAL,
        "lost: {}",
        TOTAL - processed - after.visible as usize
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_run_stops_the_engine_and_releases_its_messages() {
    let bus = bus_with_queue("dropped", 5, Duration::from_secs(30)).await;
    send_all(&bus, "dropped", numbered(5)).await;
    let runs = runs::Runs::default();
    let consumer =
        Consumer::new(bus.clone(), "dropped").handler(runs.handler(Duration::from_secs(3600)));
    let token = tokio_util::sync::CancellationToken::new();
    let cut = tokio::time::timeout(Duration::from_secs(2), consumer.run(token)).await;
    assert!(
        cut.is_err(),
        "run was still going when its future was dropped"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (started, ended) = runs.counts();
    assert_eq!(started, 5);
    assert_eq!(ended, 5, "the handlers were cancelled");
    let after = counts(&bus, "dropped").await;
    assert_eq!(
        (after.visible, after.in_flight),
        (5, 0),
        "released at once, not left to their visibility timeout"
    );
    let receives = bus.embedded_queue("dropped").unwrap().api_calls().receive;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        bus.embedded_queue("dropped").unwrap().api_calls().receive,
        receives,
        "no poller is left running"
    );
    assert_eq!(runs.counts(), (5, 5), "nothing ran again");
}

#[tokio::test(start_paused = true)]
async fn shutdown_has_one_deadline_even_when_every_call_hangs() {
    let bus = bus_with_queue("blackhole", 5, Duration::from_secs(30)).await;
    send_all(&bus, "blackhole", numbered(20)).await;
    // As on SQS, a receive on the wire is let finish, not dropped: the deadline must hold anyway.
    let faulty = faults::Faulty::new(bus.clone()).receives_not_cancel_safe();
    let runs = runs::Runs::default();
    let running = spawn(
        Consumer::new(faulty.clone(), "blackhole")
            .handler(runs.handler(Duration::from_secs(5)))
            .configure(|c| c.shutdown_timeout = Duration::from_secs(10)),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The endpoint stops answering: every call hangs for an hour.
    for op in [
        faults::Call::Receive,
        faults::Call::Delete,
        faults::Call::ChangeVisibility,
        faults::Call::Send,
    ] {
        faulty.inject(op, faults::Fault::Hang(Duration::from_secs(3600)), None);
    }
    let sigterm = Instant::now();
    let report = running.stop().await;
    let took = sigterm.elapsed();
    assert!(
        took <= Duration::from_secs(10) + Duration::from_millis(500),
        "shutdown took {took:?} with a 10 s deadline: {report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
    // Nothing is lost: what was not deleted comes back after its visibility timeout.
    faulty.clear();
    tokio::time::sleep(Duration::from_secs(31)).await;
    let after = counts(&bus, "blackhole").await;
    assert_eq!(report.acked + after.visible, 20, "{report}; {after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_started_consumer_reports_its_status_until_it_is_shut_down() {
    let bus = bus_with_queue("watched", 3, Duration::from_secs(30)).await;
    send_all(&bus, "watched", vec![OutgoingMessage::new("one")]).await;
    let runs = runs::Runs::default();
    let handle = Consumer::new(bus.clone(), "watched")
        .handler(runs.handler(Duration::from_millis(10)))
        .configure(|c| c.wait_time = Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let status = handle.status();
    assert_eq!(
        (status.queue.as_str(), status.dead_letter_queue.as_str()),
        ("watched", "watched-dlq"),
        "both queues are resolved before it starts"
    );
    wait_for(Duration::from_secs(10), || async {
        runs.counts() == (1, 1)
    })
    .await;
    let status = handle.status();
    assert!(status.polling, "{status:?}");
    assert_eq!(status.receive_failures, 0);
    assert!(!status.stopping);
    // An idle queue: each long poll answers empty after 5 s, and counts as a sign of life.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let since = handle.status().since_last_receive.unwrap();
    assert!(since <= Duration::from_secs(5), "{since:?}");
    let report = handle.shutdown().await.unwrap();
    assert_eq!((report.received, report.acked), (1, 1), "{report}");
}

#[tokio::test(start_paused = true)]
async fn dropping_run_during_its_graceful_shutdown_still_stops_the_engine() {
    let bus = bus_with_queue("dropped-late", 5, Duration::from_secs(30)).await;
    send_all(&bus, "dropped-late", numbered(5)).await;
    let runs = runs::Runs::default();
    let consumer =
        Consumer::new(bus.clone(), "dropped-late").handler(runs.handler(Duration::from_secs(3600)));
    let token = tokio_util::sync::CancellationToken::new();
    let sigterm = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sigterm.cancel();
    });
    // The graceful shutdown starts at 1 s; the future is dropped at 3 s, in the middle of it.
    let cut = tokio::time::timeout(Duration::from_secs(3), consumer.run(token)).await;
    assert!(cut.is_err(), "run was still shutting down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(runs.counts(), (5, 5), "the handlers were cancelled");
    let after = counts(&bus, "dropped-late").await;
    assert_eq!((after.visible, after.in_flight), (5, 0), "released at once");
}
