//! The idempotency layer on the consumer engine (embedded transport, paused clock): duplicates
//! run the handler once, the record's lease follows the message's, and a cancelled handler's
//! claim is released.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, MessageHandler, handler_fn};
use fleet_bus::idempotency::{Clock, IdempotencyLayer, MemoryIdempotencyStore, Status};
use fleet_bus::metrics as names;
use fleet_bus::scenarios::idempotency::body_key;
use fleet_bus::{Consumer, OutgoingMessage};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this test binary");
        snapshotter
    })
}

/// Idempotency counter values by (name, outcome) for one scope (the `worker` label), counted
/// since the last reading (the debugging recorder's snapshot resets what it reads).
fn counted(scope: &str) -> std::collections::BTreeMap<(String, String), u64> {
    let mut by = std::collections::BTreeMap::new();
    for (k, _, _, v) in snapshotter().snapshot().into_vec() {
        let key = k.key();
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
        };
        if let (Some(outcome), DebugValue::Counter(c)) = (label("outcome"), v)
            && label("worker").as_deref() == Some(scope)
            && key.name().starts_with("fleet_idempotency_")
        {
            *by.entry((key.name().to_owned(), outcome)).or_insert(0) += c;
        }
    }
    by
}

/// A handler that counts its runs and works `work`.
fn working(runs: &Arc<AtomicUsize>, work: Duration) -> MessageHandler {
    let runs = runs.clone();
    handler_fn(move |_d: Delivery| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(work).await;
            Ok(())
        }
    })
}

fn message(id: &str) -> OutgoingMessage {
    OutgoingMessage::new(serde_json::json!({"id": id, "total": 42}).to_string())
}

#[tokio::test(start_paused = true)]
async fn fifty_deliveries_of_one_key_run_the_handler_once_and_are_all_acked() {
    snapshotter();
    let bus = bus_with_queue("idem-fifty", 5, SECS(30)).await;
    send_all(
        &bus,
        "idem-fifty",
        (0..50).map(|_| message("order-1")).collect(),
    )
    .await;
    let store = Arc::new(MemoryIdempotencyStore::new());
    let layer = IdempotencyLayer::new(store.clone(), "fifty", body_key).clock(Clock::tokio());
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = layer.wrap(working(&runs, SECS(10)));
    let consumer = Consumer::new(bus.clone(), "idem-fifty")
        .handler(handler)
        .configure(|c| c.max_in_flight = Some(50));
    let running = spawn(consumer);
    wait_drained(&bus, "idem-fifty", SECS(300)).await;
    let report = running.stop().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{report}");
    assert_eq!((report.acked, report.dead_lettered), (50, 0), "{report}");
    assert_eq!(report.retried, 49, "each duplicate waited once: {report}");
    let c = |name: &str, outcome: &str| ((name.to_owned(), outcome.to_owned()), 49);
    let expected = [
        c(names::IDEMPOTENCY_CONFLICTS, "in_progress"),
        c(names::IDEMPOTENCY_HITS, "completed"),
    ];
    // The other conflict outcomes are registered at zero, so a dashboard reads 0, not nothing.
    let mut seen = counted("fifty");
    for outcome in ["key_reused", "not_held"] {
        let key = (names::IDEMPOTENCY_CONFLICTS.to_owned(), outcome.to_owned());
        assert_eq!(seen.remove(&key), Some(0), "{outcome}");
    }
    assert_eq!(seen, expected.into());
    assert_eq!(
        store.get("fifty#order-1").unwrap().status,
        Status::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn the_records_lease_follows_the_messages_lease() {
    let bus = bus_with_queue("idem-lease", 5, SECS(10)).await;
    send_all(&bus, "idem-lease", vec![message("order-2")]).await;
    let store = Arc::new(MemoryIdempotencyStore::new());
    let clock = Clock::tokio();
    let layer = IdempotencyLayer::new(store.clone(), "lease", body_key).clock(clock);
    let runs = Arc::new(AtomicUsize::new(0));
    let running = spawn(
        Consumer::new(bus.clone(), "idem-lease").handler(layer.wrap(working(&runs, SECS(50)))),
    );
    tokio::time::sleep(SECS(2)).await;
    let first = store.get("lease#order-2").unwrap();
    assert!(
        first.in_progress_expiration <= clock.now_ms() + 9_000,
        "{first:?}"
    );
    // Long past the first visibility timeout, a duplicate finds the record still held.
    tokio::time::sleep(SECS(28)).await;
    let renewed = store.get("lease#order-2").unwrap();
    assert!(
        renewed.in_progress_expiration > clock.now_ms(),
        "{renewed:?}"
    );
    assert_eq!(
        (renewed.status, renewed.holder.clone()),
        (Status::InProgress, first.holder)
    );
    send_all(&bus, "idem-lease", vec![message("order-2")]).await;
    wait_drained(&bus, "idem-lease", SECS(300)).await;
    let report = running.stop().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{report}");
    assert_eq!(
        (report.acked, report.retried),
        (2, 3),
        "the duplicate waited three times: {report}"
    );
    assert!(report.extensions >= 8, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_handler_cancelled_by_a_lost_lease_releases_its_claim() {
    let bus = bus_with_queue("idem-lost", 5, SECS(10)).await;
    send_all(&bus, "idem-lost", vec![message("order-3")]).await;
    let store = Arc::new(MemoryIdempotencyStore::new());
    let layer = IdempotencyLayer::new(store.clone(), "lost", body_key).clock(Clock::tokio());
    let runs = Arc::new(AtomicUsize::new(0));
    let running = spawn(
        Consumer::new(bus.clone(), "idem-lost").handler(layer.wrap(working(&runs, SECS(60)))),
    );
    tokio::time::sleep(SECS(2)).await;
    assert!(store.get("lost#order-3").is_some());
    bus.embedded_queue("idem-lost").unwrap().purge();
    tokio::time::sleep(SECS(20)).await;
    let report = running.stop().await;
    assert_eq!(report.lease_lost, 1, "{report}");
    assert_eq!(
        store.get("lost#order-3"),
        None,
        "released when the handler was dropped"
    );
}
