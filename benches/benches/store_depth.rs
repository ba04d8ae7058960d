//! The embedded queue's cost per message at growing depth: send `depth` messages, then receive
//! and delete them all, 10 at a time. A store whose work per call does not grow with the queue
//! shows the same cost per message at every depth.
//!
//! Not Criterion: a store that scans the queue on every call takes minutes at 100,000 messages,
//! more than Criterion's ten samples allow. One sample is 100,000 messages (100 rounds at depth
//! 1,000, one at 100,000); each depth takes `FLEET_BENCH_SAMPLES` samples (default 5) and the
//! median is printed. `FLEET_BENCH_DEPTHS=1000,10000` picks the depths.
//!
//! The cost is the CPU time of the thread that runs everything (a current-thread runtime), read
//! from `/proc/thread-self/schedstat`, so time spent waiting for a core on a shared machine does
//! not count; the kernel updates it about once a tick, hence samples of 100,000 messages. The
//! wall time is printed beside it. Where that file is missing, both are wall time.

use std::time::{Duration, Instant};

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{OutgoingMessage, QueueDecl, Receipt, ReceiveRequest, Topology, Transport};

const DEPTHS: [usize; 3] = [1_000, 10_000, 100_000];
/// Messages per sample: enough that the CPU clock's tick granularity is lost in the total.
const SAMPLE: usize = 100_000;
/// Messages per send, receive and delete call: the SQS batch limit.
const BATCH: usize = 10;
/// Message groups of the FIFO queue: enough that a receive fills its batch from several.
const GROUPS: usize = 100;

/// CPU time of this thread so far (the first field of `schedstat`, in nanoseconds).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Sends `depth` messages to a new queue, then receives and deletes them all.
async fn round(depth: usize, fifo: bool) {
    let bus = EmbeddedBus::new();
    let name = if fifo { "depth.fifo" } else { "depth" };
    let decl = QueueDecl::new(name);
    let decl = if fifo {
        decl.content_based_deduplication()
    } else {
        decl
    };
    let topology = Topology {
        queues: vec![decl],
        topics: vec![],
        ..Default::default()
    };
    bus.provision(&topology).await.expect("provision");
    let q = bus.queue(name).await.expect("queue");
    let (sender, queue) = (q.sender(), q.queue());
    for b in 0..depth / BATCH {
        let batch: Vec<OutgoingMessage> = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                let m = OutgoingMessage::new(format!("{{\"n\":{n}}}"));
                if fifo {
                    m.group(format!("g{}", n % GROUPS))
                } else {
                    m
                }
            })
            .collect();
        sender.send_batch(&batch).await.expect("send");
    }
    let request = ReceiveRequest::new(BATCH, Duration::ZERO);
    let mut left = depth;
    while left > 0 {
        let got = queue.receive(&request).await.expect("receive");
        assert!(!got.is_empty(), "{left} messages left but none received");
        let receipts: Vec<Receipt> = got.into_iter().map(|m| m.receipt).collect();
        queue.delete_batch(&receipts).await.expect("delete");
        left -= receipts.len();
    }
}

/// CPU and wall nanoseconds per message of one sample at `depth`.
fn sample(rt: &tokio::runtime::Runtime, depth: usize, fifo: bool) -> (f64, f64) {
    let rounds = (SAMPLE / depth).max(1);
    let (cpu, wall) = (cpu_time(), Instant::now());
    for _ in 0..rounds {
        rt.block_on(round(depth, fifo));
    }
    let wall = wall.elapsed();
    let cpu = match (cpu, cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall,
    };
    let per = |d: Duration| d.as_secs_f64() * 1e9 / (rounds * depth) as f64;
    (per(cpu), per(wall))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let samples: usize = std::env::var("FLEET_BENCH_SAMPLES")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    let depths: Vec<usize> = std::env::var("FLEET_BENCH_DEPTHS")
        .ok()
        .map(|d| d.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| DEPTHS.to_vec());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let unit = if cpu_time().is_some() { "CPU" } else { "wall" };
    println!("ns per message sent, received and deleted (median of {samples} samples)");
    println!("queue       depth  {unit:>8}  vs first      wall");
    for fifo in [false, true] {
        let kind = if fifo { "fifo" } else { "standard" };
        let mut base = None;
        for &depth in &depths {
            let runs: Vec<(f64, f64)> = (0..samples).map(|_| sample(&rt, depth, fifo)).collect();
            let cpu = median(runs.iter().map(|r| r.0).collect());
            let wall = median(runs.iter().map(|r| r.1).collect());
            let ratio = cpu / *base.get_or_insert(cpu);
            println!("{kind:<8} {depth:>8} {cpu:>9.0} {ratio:>8.2}x {wall:>9.0}");
        }
    }
}
