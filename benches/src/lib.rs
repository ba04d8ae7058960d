//! Shared set-up for the benchmarks: an embedded bus with a loaded queue, and a consumer run
//! until the queue is drained.

use std::time::{Duration, Instant};

use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{Consumer, OutgoingMessage, QueueDecl, Topology, Transport};
use tokio_util::sync::CancellationToken;

/// A bus with queue `bench` (and its dead-letter queue) holding `n` small messages.
///
/// # Panics
/// When the embedded bus refuses (a bug).
pub async fn loaded_bus(n: usize) -> EmbeddedBus {
    let bus = EmbeddedBus::new();
    let topology = Topology {
        queues: vec![QueueDecl::new("bench").dead_letter("bench-dlq", 5)],
        topics: vec![],
        ..Default::default()
    };
    bus.provision(&topology).await.expect("provision");
    let q = bus.queue("bench").await.expect("queue");
    let batch: Vec<OutgoingMessage> = (0..10)
        .map(|i| OutgoingMessage::new(format!("{{\"n\":{i}}}")))
        .collect();
    for _ in 0..n / 10 {
        q.sender().send_batch(&batch).await.expect("send");
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
    let consumer = Consumer::new(bus.clone(), "bench")
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .configure(|c| {
            c.pollers = pollers;
            c.flush_interval = Duration::from_millis(5);
        });
    let run = tokio::spawn(consumer.run(token.clone()));
    let q = bus.queue("bench").await.expect("queue").admin();
    loop {
        let c = q.describe().await.expect("describe").counts;
        if c.visible + c.in_flight + c.delayed == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = start.elapsed();
    token.cancel();
    let report = run.await.expect("join").expect("run");
    assert_eq!(report.acked as usize, n, "{report}");
    elapsed
}
