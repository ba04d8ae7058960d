//! What an operator sees of a consumer: its metrics and its log lines.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
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

/// A gauge's value per `worker` label, over the series whose `queue` label is `queue`.
fn gauge_by_consumer(name: &str, queue: &str) -> std::collections::BTreeMap<String, f64> {
    let mut by = std::collections::BTreeMap::new();
    for (k, _, _, v) in snapshotter().snapshot().into_vec() {
        let key = k.key();
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
        };
        if key.name() != name || label("queue").as_deref() != Some(queue) {
            continue;
        }
        if let (Some(consumer), DebugValue::Gauge(g)) = (label("worker"), v) {
            *by.entry(consumer).or_insert(0.0) += g.into_inner();
        }
    }
    by
}

#[tokio::test(start_paused = true)]
async fn two_consumers_of_one_queue_count_their_own_messages_in_flight() {
    snapshotter();
    let bus = bus_with_queue("gauged", 3, SECS(30)).await;
    send_all(
        &bus,
        "gauged",
        vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")],
    )
    .await;
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(SECS(60)).await;
        Ok(())
    });
    let one = |name: &str| {
        let name = name.to_owned();
        Consumer::new(bus.clone(), "gauged")
            .handler(handler.clone())
            .configure(move |c| {
                c.pollers = 1;
                c.max_in_flight = Some(1);
                c.handler_name = name;
            })
    };
    let a = spawn(one("worker-a"));
    let b = spawn(one("worker-b"));
    tokio::time::sleep(SECS(5)).await;
    // The debugging recorder's snapshot resets what it reads: the second reading is the change
    // since the first.
    let held = gauge_by_consumer(fleet_bus::metrics::IN_FLIGHT, "gauged");
    let expected: std::collections::BTreeMap<String, f64> =
        [("worker-a".to_owned(), 1.0), ("worker-b".to_owned(), 1.0)].into();
    assert_eq!(
        held, expected,
        "each consumer holds one message, in its own series"
    );
    wait_drained(&bus, "gauged", SECS(120)).await;
    let (ra, rb) = (a.stop().await, b.stop().await);
    assert_eq!(ra.acked + rb.acked, 2, "{ra} / {rb}");
    let change = gauge_by_consumer(fleet_bus::metrics::IN_FLIGHT, "gauged");
    for (consumer, c) in change {
        assert_eq!(
            held[&consumer] + c,
            0.0,
            "{consumer} holds nothing at the end"
        );
    }
}

/// Log lines written while the guard lives, as text.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        (lines, tracing::subscriber::set_default(subscriber))
    }

    fn matching(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_call_is_one_log_line_not_one_per_message() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("noisy", 5, SECS(10)).await;
    send_all(
        &bus,
        "noisy",
        (0..10)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect(),
    )
    .await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(
        faults::Call::Delete,
        faults::Fault::Fail {
            code: "AccessDenied",
            retryable: false,
        },
        Some(1),
    );
    let handler = handler_fn(|_d: Delivery| async move { Ok(()) });
    let running = spawn(
        Consumer::new(faulty.clone(), "noisy")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    wait_drained(&bus, "noisy", SECS(120)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(
        report.received, 20,
        "refused once, all ten came back: {report}"
    );
    let failed = lines.matching("AccessDenied");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].contains("10"),
        "the line says how many: {}",
        failed[0]
    );
}

#[tokio::test(start_paused = true)]
async fn settings_a_redrive_policy_overrides_are_named_in_a_warning() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("overridden", 3, SECS(30)).await;
    let running = spawn(
        Consumer::new(bus.clone(), "overridden")
            .handler(handler_fn(|_d: Delivery| async move { Ok(()) }))
            .configure(|c| {
                c.max_attempts = Some(7);
                c.dead_letter_queue = Some("elsewhere".into());
            }),
    );
    tokio::time::sleep(SECS(1)).await;
    running.stop().await;
    let warned = lines.matching("WARN");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("max_attempts") && l.contains("dead_letter_queue")),
        "{warned:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_visibility_shorter_than_the_long_poll_is_warned_about() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("short-lease", 3, SECS(5)).await;
    let running = spawn(
        Consumer::new(bus.clone(), "short-lease")
            .handler(handler_fn(|_d: Delivery| async move { Ok(()) })),
    );
    tokio::time::sleep(SECS(1)).await;
    running.stop().await;
    let warned = lines.matching("WARN");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("visibility timeout is shorter than the long-poll wait")),
        "{warned:#?}"
    );
}
