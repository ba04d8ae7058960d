//! Adaptive polling against fixed pollers, behind a network round trip: the embedded queue
//! wrapped in a `LatencyTransport` that makes every queue call wait 20 ms, as an SQS call from
//! the same region about does.
//!
//! - **deep**: `FLEET_BENCH_DEEP` messages (default 5,000) preloaded, drained with a no-op
//!   handler: throughput comes from receives overlapping, so more pollers pay.
//! - **quiet**: a feeder sends one message every 5 ms (200 a second, `FLEET_BENCH_QUIET`
//!   messages, default 1,000): every poller finds a few messages, so more pollers only split
//!   them into more receives. Throughput is the feeder's rate; the requests per message differ.
//!
//! For each: messages per second (from the consumer's start to the last message handled),
//! receives per message, all queue calls per message (receives, deletes and visibility
//! changes, counted by the embedded queue itself), and the most receives on the wire at once.
//! A plain program, not Criterion: each row is one run of seconds, and the counts are exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleet_benches::embedded::{QUEUE, loaded_bus};
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::scenarios::latency::LatencyTransport;
use fleet_bus::{Consumer, OutgoingMessage, Transport};
use tokio_util::sync::CancellationToken;

const ROUND_TRIP: Duration = Duration::from_millis(20);
const FEED_EVERY: Duration = Duration::from_millis(5);

/// The consumers compared: (label, min_pollers, pollers).
const CONSUMERS: [(&str, usize, usize); 5] = [
    ("fixed 1", 1, 1),
    ("fixed 2 (the old default)", 2, 2),
    ("adaptive 1..2 (the default)", 1, 2),
    ("fixed 4", 4, 4),
    ("adaptive 1..4", 1, 4),
];

struct Row {
    msg_per_s: f64,
    receives_per_msg: f64,
    calls_per_msg: f64,
    peak_on_wire: usize,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one consumer until `n` messages are handled; `deep` preloads them, otherwise a feeder
/// sends them one every 5 ms.
async fn run(n: usize, deep: bool, (min, max): (usize, usize)) -> Row {
    let bus = loaded_bus(if deep { n } else { 0 }).await;
    let sender = bus.queue(QUEUE).await.expect("queue").sender();
    let slow = LatencyTransport::new(bus.clone(), ROUND_TRIP);
    let receives = slow.receives();
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let consumer = Consumer::new(slow, QUEUE)
        .handler(handler_fn(move |_d: Delivery| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        }))
        .configure(|c| {
            c.min_pollers = min;
            c.pollers = max;
        });
    let token = CancellationToken::new();
    let start = Instant::now();
    let running = tokio::spawn(consumer.run(token.clone()));
    let feeder = (!deep).then(|| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FEED_EVERY);
            for i in 0..n {
                every.tick().await;
                sender
                    .send(OutgoingMessage::new(format!("{{\"n\":{i}}}")))
                    .await
                    .expect("send");
            }
        })
    });
    while handled.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    if let Some(feeder) = feeder {
        feeder.await.expect("feeder");
    }
    token.cancel();
    let report = running.await.expect("join").expect("run");
    assert_eq!(report.acked as usize, n, "{report}");
    let calls = bus.embedded_queue(QUEUE).expect("queue").api_calls();
    let consumer_calls = calls.receive + calls.delete + calls.change_visibility;
    Row {
        msg_per_s: n as f64 / elapsed.as_secs_f64(),
        receives_per_msg: receives.calls() as f64 / n as f64,
        calls_per_msg: consumer_calls as f64 / n as f64,
        peak_on_wire: receives.peak_on_wire(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let deep = env_or("FLEET_BENCH_DEEP", 5_000);
    let quiet = env_or("FLEET_BENCH_QUIET", 1_000);
    println!(
        "every queue call waits {ROUND_TRIP:?}; deep: {deep} messages preloaded; quiet: one message every {FEED_EVERY:?}, {quiet} in all\n"
    );
    println!(
        "| queue | consumer | msg/s | receives / msg | queue calls / msg | most receives at once |"
    );
    println!("|---|---|---|---|---|---|");
    for (scenario, n, is_deep) in [("deep", deep, true), ("quiet", quiet, false)] {
        for (label, min, max) in CONSUMERS {
            let row = runtime.block_on(run(n, is_deep, (min, max)));
            println!(
                "| {scenario} | {label} | {:.0} | {:.3} | {:.3} | {} |",
                row.msg_per_s, row.receives_per_msg, row.calls_per_msg, row.peak_on_wire
            );
        }
    }
}
