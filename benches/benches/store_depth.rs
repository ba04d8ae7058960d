//! The embedded queue's cost per message at growing depth: send `depth` messages, then receive
//! and delete them all, 10 at a time. A store whose work per call does not grow with the queue
//! shows the same cost per message at every depth.
//!
//! Not Criterion: a store that scans the queue on every call takes minutes at 100,000 messages,
//! more than Criterion's ten samples allow. Each depth runs `FLEET_BENCH_ROUNDS` times (default 5)
//! and the median is printed.

use std::time::{Duration, Instant};

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{OutgoingMessage, QueueDecl, ReceiveRequest, Receipt, Topology, Transport};

const DEPTHS: [usize; 3] = [1_000, 10_000, 100_000];
/// Messages per send, receive and delete call: the SQS batch limit.
const BATCH: usize = 10;
/// Message groups of the FIFO queue: enough that a receive fills its batch from several.
const GROUPS: usize = 100;

#[derive(Clone, Copy)]
struct Cost {
    send: Duration,
    drain: Duration,
}

async fn run(depth: usize, fifo: bool) -> Cost {
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

    let start = Instant::now();
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
    let send = start.elapsed();

    let start = Instant::now();
    let request = ReceiveRequest::new(BATCH, Duration::ZERO);
    let mut left = depth;
    while left > 0 {
        let got = queue.receive(&request).await.expect("receive");
        assert!(!got.is_empty(), "{left} messages left but none received");
        let receipts: Vec<Receipt> = got.into_iter().map(|m| m.receipt).collect();
        queue.delete_batch(&receipts).await.expect("delete");
        left -= receipts.len();
    }
    Cost {
        send,
        drain: start.elapsed(),
    }
}

fn per_message(d: Duration, depth: usize) -> f64 {
    d.as_secs_f64() * 1e9 / depth as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("FLEET_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("queue     depth    send ns/msg  receive+delete ns/msg  total ns/msg  vs 1,000");
    for fifo in [false, true] {
        let mut base = None;
        for depth in DEPTHS {
            let costs: Vec<Cost> = (0..rounds).map(|_| rt.block_on(run(depth, fifo))).collect();
            let send = median(costs.iter().map(|c| per_message(c.send, depth)).collect());
            let drain = median(costs.iter().map(|c| per_message(c.drain, depth)).collect());
            let total = median(
                costs
                    .iter()
                    .map(|c| per_message(c.send + c.drain, depth))
                    .collect(),
            );
            let ratio = total / *base.get_or_insert(total);
            let kind = if fifo { "fifo" } else { "standard" };
            println!(
                "{kind:<8} {depth:>7} {send:>14.0} {drain:>22.0} {total:>13.0} {ratio:>9.2}x"
            );
        }
    }
}
