//! The analytics worker end to end: messages sent to a queue, consumed by the engine with the
//! worker's batch handler, counted exactly once whatever happens: duplicates, redelivery after a
//! write that failed before or after its commit, bad messages (dead-lettered with their labels)
//! and types it does not count (acknowledged). On the embedded transport with the in-memory
//! store, and on moto with SQS and the DynamoDB store.

#![allow(clippy::unwrap_used)]

mod analytics_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use analytics_support::mix::{Mix, mix};
use analytics_support::{Dynamo, Fault, FaultKind};
use async_trait::async_trait;
use fleet_bus::consumer::{ConsumerConfig, Delivery, batch_handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::scenarios::support::{Running, declare_with_dlq, send_all, wait_drained};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, OutgoingMessage, ShutdownReport, Transport};
use fleet_workers::analytics::aggregate::{self, Counted};
use fleet_workers::analytics::wcu;
use fleet_workers::analytics::{
    AnalyticsError, AnalyticsWorker, CounterStore, EventDeltas, EventOutcome, MemoryCounterStore,
    WriteFailure,
};

/// A store that fails its first `apply`: before writing (`commit: false`) or after writing
/// (`commit: true`, as a crash between the commit and the acknowledgement would).
struct FailsOnce {
    inner: Arc<dyn CounterStore>,
    commit: bool,
    failed: AtomicBool,
}

impl FailsOnce {
    fn new(inner: Arc<dyn CounterStore>, commit: bool) -> Self {
        Self {
            inner,
            commit,
            failed: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl CounterStore for FailsOnce {
    async fn apply(&self, events: &[EventDeltas]) -> Vec<EventOutcome> {
        if self.failed.swap(true, Ordering::SeqCst) {
            return self.inner.apply(events).await;
        }
        if self.commit {
            self.inner.apply(events).await;
        }
        vec![EventOutcome::Failed(WriteFailure::label("injected")); events.len()]
    }

    async fn read(&self, keys: &[String]) -> Result<Vec<i64>, AnalyticsError> {
        self.inner.read(keys).await
    }
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        wait_time: Duration::from_secs(1),
        flush_interval: Duration::from_millis(50),
        retry: RetryPolicy {
            base: Duration::from_millis(500),
            max: Duration::from_secs(1),
            jitter: Jitter::None,
        },
        handler_name: "analytics".into(),
        ..ConsumerConfig::default()
    }
}

/// Sends the mix to a new queue on `t`, runs the worker on it until the queue is empty, and
/// returns the consumer's report and the dead-letter labels, sorted.
async fn run(
    t: &(impl Transport + Clone + 'static),
    m: &Mix,
    store: Arc<dyn CounterStore>,
    config: ConsumerConfig,
) -> (ShutdownReport, Vec<String>) {
    let queue = unique_name("analytics");
    let dlq = declare_with_dlq(t, &queue, 5, Duration::from_secs(30)).await;
    let messages = m.bodies.iter().map(OutgoingMessage::new).collect();
    send_all(t, &queue, messages).await;
    let worker = AnalyticsWorker::new(store);
    let running = Running::start(
        Consumer::new(t.clone(), &queue)
            .handler(worker.handler())
            .config(config),
    );
    wait_drained(t, &queue, Duration::from_secs(120)).await;
    let report = running.stop().await;
    let letters = fleet_workers::dlq::inspect(t, &dlq, usize::MAX, Duration::from_secs(60))
        .await
        .unwrap();
    let mut labels: Vec<String> = letters
        .into_iter()
        .map(|l| l.reason.map(|r| r.kind).unwrap_or_default())
        .collect();
    labels.sort();
    (report, labels)
}

/// Every expected counter as the store reads it back, and nothing else written.
async fn assert_exact(store: &dyn CounterStore, m: &Mix, written: Option<BTreeMap<String, i64>>) {
    let expected = m.nonzero();
    let keys: Vec<String> = expected.keys().cloned().collect();
    let read: BTreeMap<String, i64> = keys
        .iter()
        .cloned()
        .zip(store.read(&keys).await.unwrap())
        .collect();
    assert_eq!(read, expected, "counters read back");
    if let Some(written) = written {
        let written: BTreeMap<String, i64> = written.into_iter().filter(|(_, v)| *v != 0).collect();
        assert_eq!(written, expected, "every counter written, none extra");
    }
}

fn assert_accounted(report: &ShutdownReport, m: &Mix, retried: u64) {
    let bad = m.bad_labels.len() as u64;
    let good = (m.counted + m.duplicates + m.skipped) as u64;
    assert_eq!(
        (report.acked, report.dead_lettered, report.retried),
        (good, bad, retried),
        "{report:?}"
    );
    assert_eq!(report.received, good + bad + retried, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn counts_each_event_once_with_duplicates_skipped_types_and_bad_messages() {
    let bus = EmbeddedBus::new();
    let m = mix(300, 1_500, 10, true);
    assert!(
        m.duplicates >= 20 && m.skipped >= 10,
        "{} {}",
        m.duplicates,
        m.skipped
    );
    // Emails sent, with and without a template, some of them twice: counted once each.
    let sent: Vec<&String> = m
        .bodies
        .iter()
        .filter(|b| b.contains("\"type\":\"email.sent\""))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = sent.iter().copied().collect();
    assert!(
        distinct.len() >= 10 && sent.len() > distinct.len(),
        "{} email.sent, {} distinct",
        sent.len(),
        distinct.len()
    );
    let store = Arc::new(MemoryCounterStore::new());
    let (report, labels) = run(&bus, &m, store.clone(), config()).await;
    assert_eq!(labels, m.bad_labels);
    assert_accounted(&report, &m, 0);
    assert_exact(&*store, &m, Some(store.snapshot().into_iter().collect())).await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_write_fails_once_is_retried_and_counted_once() {
    let bus = EmbeddedBus::new();
    let m = mix(100, 1_000, 10, false);
    let memory = Arc::new(MemoryCounterStore::new());
    let store = Arc::new(FailsOnce::new(memory.clone(), false));
    let (report, labels) = run(&bus, &m, store, config()).await;
    assert!(labels.is_empty(), "{labels:?}");
    assert!(
        report.retried >= 1,
        "the failed batch was retried: {report:?}"
    );
    assert_accounted(&report, &m, report.retried);
    assert_exact(&*memory, &m, Some(memory.snapshot().into_iter().collect())).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_commit_is_redelivered_and_not_counted_twice() {
    let bus = EmbeddedBus::new();
    let m = mix(100, 1_000, 10, false);
    let memory = Arc::new(MemoryCounterStore::new());
    let store = Arc::new(FailsOnce::new(memory.clone(), true));
    let (report, labels) = run(&bus, &m, store, config()).await;
    assert!(labels.is_empty(), "{labels:?}");
    assert!(report.retried >= 1, "{report:?}");
    assert_accounted(&report, &m, report.retried);
    assert_exact(&*memory, &m, Some(memory.snapshot().into_iter().collect())).await;
}

/// Settings for moto: one poller, so one batch at a time (moto does not isolate concurrent
/// transactions; see `analytics_store.rs`).
fn moto_config() -> ConsumerConfig {
    ConsumerConfig {
        pollers: 1,
        max_in_flight: Some(10),
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqs_and_dynamodb_each_event_counts_once_through_failed_writes_and_duplicates() {
    let t = fleet_tests::moto::transport().await;
    let refused = Fault::new(FaultKind::LostResponseRefused, 1);
    let unsent = Fault::new(FaultKind::BeforeSending, 1);
    let d = Dynamo::with_faults(vec![refused.clone(), unsent.clone()]).await;
    let m = mix(150, 1_000, 10, true);
    let (report, labels) = run(&t, &m, d.shared(), moto_config()).await;
    assert_eq!(
        (refused.left(), unsent.left()),
        (0, 0),
        "both faults injected"
    );
    assert_eq!(labels, m.bad_labels);
    assert!(report.retried >= 2, "{report:?}");
    assert_accounted(&report, &m, report.retried);
    let mut written = BTreeMap::new();
    for item in d.items("COUNTER#").await {
        let text = |name: &str| match item.get(name) {
            Some(
                aws_sdk_dynamodb::types::AttributeValue::S(v)
                | aws_sdk_dynamodb::types::AttributeValue::N(v),
            ) => v.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let key = text("PK").trim_start_matches("COUNTER#").to_owned();
        *written.entry(key).or_insert(0) += text("value").parse::<i64>().unwrap();
    }
    assert_exact(&d.store, &m, Some(written)).await;
    assert_eq!(
        d.items("EVENT#").await.len(),
        m.counted,
        "one deduplication item per event"
    );
}

/// The batches a handler was given, as message bodies.
type Batches = Arc<std::sync::Mutex<Vec<Vec<String>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_cost_per_event_at_batch_size_ten() {
    let t = fleet_tests::moto::transport().await;
    let d = Dynamo::new().await;
    // A burst: 200 messages 300 ms apart, several names and subjects, order analytics in two
    // currencies, raw order events, and email requests the worker does not count.
    let m = mix(200, 300, 0, false);
    let queue = unique_name("analytics-cost");
    declare_with_dlq(&t, &queue, 5, Duration::from_secs(30)).await;
    send_all(
        &t,
        &queue,
        m.bodies.iter().map(OutgoingMessage::new).collect(),
    )
    .await;
    let batches = Batches::default();
    let worker = AnalyticsWorker::new(d.shared());
    let seen = Arc::clone(&batches);
    let handler = batch_handler_fn(move |deliveries: Vec<Delivery>| {
        let (worker, seen) = (worker.clone(), Arc::clone(&seen));
        async move {
            let bodies = deliveries.iter().map(|d| d.message.body.clone()).collect();
            seen.lock().unwrap().push(bodies);
            Ok(worker.handle(deliveries).await)
        }
    });
    let running = Running::start(
        Consumer::new(t.clone(), &queue)
            .handler(handler)
            .config(moto_config()),
    );
    wait_drained(&t, &queue, Duration::from_secs(120)).await;
    let report = running.stop().await;
    assert_eq!(report.acked as usize, m.bodies.len(), "{report:?}");
    assert_exact(&d.store, &m, None).await;

    let batches = batches.lock().unwrap().clone();
    let stats = d.store.write_stats();
    let calls = d.transactions();
    let dedup = m.counted as u64;
    assert_eq!(
        calls,
        batches.len() as u64,
        "one TransactWriteItems per batch"
    );
    assert_eq!((stats.calls, stats.committed), (calls, calls));
    assert_eq!(
        stats.wcu,
        2 * stats.items,
        "every item is under 1 KB: 2 WCU each"
    );
    let (packed, delta_items) = estimates(&batches);
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for b in &batches {
        *sizes.entry(b.len()).or_default() += 1;
    }
    let per_event = |wcu: u64| wcu as f64 / m.counted as f64;
    println!(
        "analytics write cost, {} messages ({} counted events, {} not counted) in {} batches (batch sizes: {sizes:?}):\n\
         - TransactWriteItems calls per batch: {:.2} (counted by the SDK interceptor: {calls} calls, {} requests)\n\
         - items written: {} ({dedup} deduplication items + {} counter updates), {:.1} per batch\n\
         - WCU per counted event: {:.2} ({} WCU; computed, as moto reports no ConsumedCapacity for \
         transactions: each item of a committed transaction costs 2 WCU per started KB of its size, \
         attribute names and values, the counter's value taken at its 21-byte maximum; all items here are under 1 KB)\n\
         - of which the deduplication items: {:.2} WCU per event, the floor of any design with one \
         conditional item per event in the transaction\n\
         - estimate, not built: minute counters packed into their hour item: {:.2} WCU per event; \
         one item per batch holding its summed deltas instead of a write per counter (read by \
         summing those items, or rolled up later at extra cost): {:.2} WCU per event",
        m.bodies.len(),
        m.counted,
        m.skipped,
        batches.len(),
        calls as f64 / batches.len() as f64,
        d.calls.get("DynamoDB", "TransactWriteItems").requests,
        stats.items,
        stats.items - dedup,
        stats.items as f64 / batches.len() as f64,
        per_event(stats.wcu),
        stats.wcu,
        per_event(2 * dedup),
        per_event(2 * (dedup + packed)),
        per_event(2 * dedup + delta_items),
    );
}

/// Estimates for designs not built, from the batches' own deltas: the counter items written if
/// each minute counter were an attribute of its hour counter's item, and the WCU of one item
/// per batch holding the batch's summed deltas as a map (DynamoDB sizes a map as its name, 3
/// bytes, and per element its name, value and 1 byte).
fn estimates(batches: &[Vec<String>]) -> (u64, u64) {
    let (mut packed, mut delta_item_wcu) = (0, 0);
    for bodies in batches {
        let events: Vec<_> = bodies
            .iter()
            .filter_map(
                |body| match aggregate::count(&fleet_schemas::decode(body).unwrap()) {
                    Ok(Counted::Deltas(d)) => Some(d),
                    _ => None,
                },
            )
            .collect();
        let totals = aggregate::sum(&events);
        let items: std::collections::BTreeSet<String> = totals
            .keys()
            .map(|key| match key.split_once("#minute#") {
                Some((name, minute)) => format!("{name}#hour#{}", &minute[..13]),
                None => key.clone(),
            })
            .collect();
        packed += items.len() as u64;
        let map: usize = totals
            .iter()
            .map(|(key, total)| wcu::number_attribute(key, *total) + 1)
            .sum();
        let size = wcu::string_attribute("PK", "DELTAS#2026-11-28#0")
            + wcu::string_attribute("SK", &"t".repeat(36))
            + "deltas".len()
            + 3
            + map;
        delta_item_wcu += wcu::transactional_item_wcu(size);
    }
    (packed, delta_item_wcu)
}
