//! Throughput on the embedded transport with a no-op handler: Fleet's `Consumer` and the two
//! baselines it is measured against, a bare channel loop and a task spawned per message.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{Consumer, OutgoingMessage, QueueDecl, ShutdownReport, Topology, Transport};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The queue every embedded measurement uses.
pub const QUEUE: &str = "bench";

/// Room in the baselines' channel: about what a consumer at defaults holds (two pollers, 20 in
/// flight, ten times that held until settled).
const CHANNEL_CAPACITY: usize = 256;

/// A bus with queue `bench` (and its dead-letter queue) holding `n` small messages.
///
/// # Panics
/// When the embedded bus refuses (a bug).
pub async fn loaded_bus(n: usize) -> EmbeddedBus {
    let bus = EmbeddedBus::new();
    let topology = Topology {
        queues: vec![QueueDecl::new(QUEUE).dead_letter("bench-dlq", 5)],
        topics: vec![],
        ..Default::default()
    };
    bus.provision(&topology).await.expect("provision");
    let q = bus.queue(QUEUE).await.expect("queue");
    let batch: Vec<OutgoingMessage> = (0..10)
        .map(|i| OutgoingMessage::new(format!("{{\"n\":{i}}}")))
        .collect();
    for _ in 0..n / 10 {
        q.sender().send_batch(&batch).await.expect("send");
    }
    let rest: Vec<OutgoingMessage> = batch.into_iter().take(n % 10).collect();
    if !rest.is_empty() {
        q.sender().send_batch(&rest).await.expect("send");
    }
    bus
}

/// Consumes the whole `bench` queue with a no-op handler; returns the wall time it took.
///
/// # Panics
/// When the consumer fails (a bug).
pub async fn drain(bus: EmbeddedBus, n: usize, pollers: usize) -> Duration {
    let start = Instant::now();
    let token = CancellationToken::new();
    let consumer = Consumer::new(bus.clone(), QUEUE)
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .configure(|c| {
            // A fixed number of pollers, as the engine benchmark's rows are named.
            c.pollers = pollers;
            c.min_pollers = pollers;
            c.flush_interval = Duration::from_millis(5);
        });
    let run = tokio::spawn(consumer.run(token.clone()));
    wait_until_empty(&bus).await;
    let elapsed = start.elapsed();
    token.cancel();
    let report = run.await.expect("join").expect("run");
    assert_eq!(report.acked as usize, n, "{report}");
    elapsed
}

/// What one run handled and how long it took.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    /// Messages the consumer received (for the baselines: took from the channel).
    pub received: u64,
    /// Messages the handler ran on and that were settled (for Fleet: acknowledged and deleted).
    pub handled: u64,
    /// From the consumer's start until the last message was settled.
    pub elapsed: Duration,
    /// From the consumer's start until the last handler ran (for the baselines: `elapsed`).
    pub last_handled: Duration,
}

impl Throughput {
    /// Messages handled per second, until the last handler ran. Fleet's deletes keep pace with
    /// its handlers (at most ten times the in-flight limit are held unsettled), but the last
    /// partial delete batch waits out the flush interval (100 ms by default): a fixed delay at
    /// the end, not a cost per message, shown apart as `elapsed`.
    pub fn per_second(&self) -> f64 {
        self.handled as f64 / self.last_handled.as_secs_f64().max(1e-9)
    }
}

/// Fleet's `Consumer` with `ConsumerConfig::default()` and a no-op handler on a queue preloaded
/// with `n` messages: the time from its start until the last handler ran, and until the queue
/// is empty (every delete applied), then a graceful shutdown whose report gives the counts.
///
/// # Errors
/// When the consumer fails to start or stops with an error.
pub async fn fleet_consumer(n: usize) -> anyhow::Result<(Throughput, ShutdownReport)> {
    let bus = loaded_bus(n).await;
    let handled = Arc::new(AtomicUsize::new(0));
    let all_handled = Arc::new(Notify::new());
    let handler = {
        let handled = handled.clone();
        let all_handled = all_handled.clone();
        handler_fn(move |d: Delivery| {
            let handled = handled.clone();
            let all_handled = all_handled.clone();
            async move {
                black_box(d.message.body.as_str());
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_handled.notify_one();
                }
                Ok(())
            }
        })
    };
    let start = Instant::now();
    let consumer = Consumer::new(bus.clone(), QUEUE)
        .handler(handler)
        .start()
        .await?;
    // Watching the handler's count costs nothing while the consumer runs; the queue is only
    // asked (which takes its lock) for the last deletes.
    all_handled.notified().await;
    let last_handled = start.elapsed();
    wait_until_empty(&bus).await;
    let elapsed = start.elapsed();
    let report = consumer.shutdown().await?;
    Ok((
        Throughput {
            received: report.received,
            handled: report.acked,
            elapsed,
            last_handled,
        },
        report,
    ))
}

async fn wait_until_empty(bus: &EmbeddedBus) {
    let q = bus.queue(QUEUE).await.expect("queue").admin();
    loop {
        let c = q.describe().await.expect("describe").counts;
        if c.visible + c.in_flight + c.delayed == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The bodies the baselines carry: the same small JSON as the embedded queue's, built before
/// the clock starts, as the queue's are.
fn bodies(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{{\"n\":{}}}", i % 10)).collect()
}

/// A no-op handler the compiler cannot remove.
async fn noop(body: &str) {
    black_box(body);
}

/// The floor: a producer task sends `n` bodies through a bounded tokio mpsc channel, and one
/// consumer loop awaits the no-op handler on each in turn.
pub async fn channel_loop(n: usize) -> Throughput {
    let bodies = bodies(n);
    let start = Instant::now();
    let (tx, mut rx) = mpsc::channel::<String>(CHANNEL_CAPACITY);
    let producer = tokio::spawn(produce(tx, bodies));
    let mut handled = 0u64;
    while let Some(body) = rx.recv().await {
        noop(&body).await;
        handled += 1;
    }
    let elapsed = start.elapsed();
    let _ = producer.await;
    Throughput {
        received: handled,
        handled,
        elapsed,
        last_handled: elapsed,
    }
}

/// What a hand-written consumer does: the same producer and channel, and a task spawned per
/// message that runs the no-op handler; done when every task has finished.
pub async fn spawn_per_message(n: usize) -> Throughput {
    let bodies = bodies(n);
    let handled = Arc::new(AtomicUsize::new(0));
    let all_handled = Arc::new(Notify::new());
    let start = Instant::now();
    let (tx, mut rx) = mpsc::channel::<String>(CHANNEL_CAPACITY);
    let producer = tokio::spawn(produce(tx, bodies));
    let mut received = 0u64;
    while let Some(body) = rx.recv().await {
        received += 1;
        let handled = handled.clone();
        let all_handled = all_handled.clone();
        tokio::spawn(async move {
            noop(&body).await;
            if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                all_handled.notify_one();
            }
        });
    }
    if n > 0 {
        all_handled.notified().await;
    }
    let elapsed = start.elapsed();
    let _ = producer.await;
    Throughput {
        received,
        handled: handled.load(Ordering::Relaxed) as u64,
        elapsed,
        last_handled: elapsed,
    }
}

async fn produce(tx: mpsc::Sender<String>, bodies: Vec<String>) {
    for body in bodies {
        if tx.send(body).await.is_err() {
            return;
        }
    }
}
