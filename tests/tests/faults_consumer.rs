//! The consumer engine on SQS (moto) behind both fault proxies (SDK -> AWS error proxy -> TCP
//! proxy -> moto), with the SDK's own retries off so the engine meets every fault. Whatever
//! the faults, every message is handled, every received message is settled exactly once in the
//! report (`received == settled`), and the queue and its DLQ end empty. Counted independently:
//! the handler's own record and the queues' contents.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fleet_bus::aws::SqsTransport;
use fleet_bus::consumer::{Delivery, ShutdownReport, handler_fn};
use fleet_bus::scenarios::support::send_all;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, OutgoingMessage, Transport};
use fleet_tests::faults::aws::{AwsError, AwsErrorProxy};
use fleet_tests::faults::tcp::{TcpFaultProxy, Toxic};
use fleet_tests::faults::{sdk_config_without_retries, seed};
use fleet_tests::fleet::{
    Running, Shared, counts, declare_with_dlq, eventually, lock, quick_config,
};
use fleet_tests::moto;

const MESSAGES: usize = 40;

/// Each call attempt's limit: a blackholed call fails after it.
const ATTEMPT: Duration = Duration::from_secs(3);

fn latency() -> Toxic {
    Toxic::Latency {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(40),
    }
}

/// A loaded queue, both proxies in front of moto, and a consumer running through them.
struct Bench {
    seed: u64,
    direct: SqsTransport,
    name: String,
    dlq: String,
    tcp: TcpFaultProxy,
    aws: AwsErrorProxy,
    handled: Shared<BTreeMap<String, u32>>,
    running: Running,
}

impl Bench {
    /// `before` sets the faults a running worker meets after it opened its queue.
    async fn start(before: impl FnOnce(&TcpFaultProxy, &AwsErrorProxy)) -> Self {
        let seed = seed();
        let direct = moto::transport().await;
        let name = unique_name("faulty");
        let dlq = declare_with_dlq(&direct, &name, 5, Duration::from_secs(10)).await;
        let bodies = (0..MESSAGES).map(|i| OutgoingMessage::new(format!("m{i}")));
        send_all(&direct, &name, bodies.collect()).await;

        let tcp = TcpFaultProxy::start_for(&moto::moto().endpoint, seed)
            .await
            .unwrap();
        tcp.set(latency());
        let aws = AwsErrorProxy::start(&tcp.endpoint(), seed).await.unwrap();
        let faulty = SqsTransport::new(&sdk_config_without_retries(aws.endpoint(), ATTEMPT).await);
        faulty.queue(&name).await.unwrap();
        before(&tcp, &aws);

        let handled: Shared<BTreeMap<String, u32>> = Arc::default();
        let handler = {
            let handled = handled.clone();
            handler_fn(move |d: Delivery| {
                let handled = handled.clone();
                async move {
                    *lock(&handled).entry(d.message.body.clone()).or_default() += 1;
                    Ok(())
                }
            })
        };
        let running = Running::start(
            Consumer::new(faulty, &name)
                .handler(handler)
                .config(quick_config()),
        );
        Self {
            seed,
            direct,
            name,
            dlq,
            tcp,
            aws,
            handled,
            running,
        }
    }

    async fn wait_handled(&self, at_least: usize, limit: Duration) {
        eventually(limit, || async { lock(&self.handled).len() >= at_least }).await;
    }

    /// Waits until every message is handled and the queue is empty, stops the consumer and
    /// checks the invariants.
    async fn finish(self) -> ShutdownReport {
        let Bench {
            seed,
            direct,
            name,
            dlq,
            handled,
            running,
            ..
        } = self;
        eventually(Duration::from_secs(40), || async {
            let c = counts(&direct, &name).await;
            lock(&handled).len() == MESSAGES && c.visible + c.in_flight + c.delayed == 0
        })
        .await;
        let report = running.stop().await;
        assert_eq!(report.received, report.settled(), "seed {seed}: {report}");
        let handled = lock(&handled).clone();
        assert_eq!(handled.len(), MESSAGES, "seed {seed}");
        assert!((0..MESSAGES).all(|i| handled.contains_key(&format!("m{i}"))));
        let c = counts(&direct, &dlq).await;
        assert_eq!(
            c.visible + c.in_flight,
            0,
            "nothing dead-lettered, seed {seed}"
        );
        // A message redelivered after a failed delete is handled again (at least once); every
        // handling is a receive the report settled.
        let handlings: u64 = handled.values().map(|n| u64::from(*n)).sum();
        assert!(report.received >= handlings, "seed {seed}: {report}");
        eprintln!(
            "seed {seed}: {report}; handled twice {}",
            handled.values().filter(|n| **n > 1).count()
        );
        report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_under_throttling_errors_and_latency_settles_every_message() {
    // Every receive throttled at first, so the engine surely meets throttling whatever the
    // seed; then the seeded 30 %. A fifth of the delete batches fail with a 500.
    let bench = Bench::start(|_, aws| {
        aws.inject("ReceiveMessage", 1.0, AwsError::Throttling);
        aws.inject("DeleteMessageBatch", 0.2, AwsError::InternalError);
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        bench.aws.injected("ReceiveMessage") >= 2
    })
    .await;
    bench
        .aws
        .inject("ReceiveMessage", 0.3, AwsError::Throttling);
    // Half way, every connection to moto is reset for a moment (held until one is hit: a
    // poller backing off from a throttle may have had no call open).
    bench
        .wait_handled(MESSAGES / 2, Duration::from_secs(30))
        .await;
    bench.tcp.set(Toxic::Reset);
    tokio::time::sleep(Duration::from_millis(300)).await;
    eventually(Duration::from_secs(10), || async { bench.tcp.resets() > 0 }).await;
    bench.tcp.set(latency());
    let calls = |op| (bench.aws.injected(op), bench.aws.calls(op));
    let (receives, deletes) = (calls("ReceiveMessage"), calls("DeleteMessageBatch"));
    bench.finish().await;
    eprintln!("throttled receives {receives:?}, failed delete batches {deletes:?} (by then)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_through_a_blackhole_and_refused_connections_settles_every_message() {
    let bench = Bench::start(|_, _| {}).await;
    bench
        .wait_handled(MESSAGES / 4, Duration::from_secs(20))
        .await;
    // Calls hang and time out (receives, deletes, extensions alike) ...
    bench.tcp.set(Toxic::Blackhole);
    tokio::time::sleep(ATTEMPT + Duration::from_secs(1)).await;
    // ... then nothing can connect for a while ...
    bench.tcp.set(Toxic::Refuse);
    tokio::time::sleep(Duration::from_secs(2)).await;
    bench.tcp.set(latency());
    bench
        .wait_handled(MESSAGES / 2, Duration::from_secs(20))
        .await;
    // ... and the data comes back at a trickle.
    bench.tcp.set(Toxic::Bandwidth {
        bytes_per_second: 20_000,
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    bench.tcp.set(latency());
    assert!(bench.tcp.resets() > 0);
    bench.finish().await;
}
