//! A consumer's metrics as a recorder sees them: the catalogue's series, registered up front
//! with the `worker` label; settled outcomes that add up to what was received, exactly; receive
//! latency, empty receives, API errors by class, and handler failures with a bounded label.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::metrics::{self as m, CATALOGUE, MetricKind};
use fleet_bus::scenarios::latency::LatencyTransport;
use fleet_bus::{Consumer, OutgoingMessage};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

const SECS: fn(u64) -> Duration = Duration::from_secs;

type Labels = BTreeMap<String, String>;

/// A recorder that keeps every value and description, and whose readings reset nothing (the
/// tests of this binary share it).
struct Store {
    registry: Registry<Key, AtomicStorage>,
    described: Mutex<HashMap<String, (Option<Unit>, String)>>,
}

impl Store {
    fn describe(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        let mut d = self.described.lock().unwrap();
        d.insert(key.as_str().to_owned(), (unit, help.to_string()));
    }
}

impl Recorder for Store {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.describe(key, unit, help);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.describe(key, unit, help);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.describe(key, unit, help);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

fn store() -> &'static Store {
    static STORE: OnceLock<&'static Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let store: &'static Store = Box::leak(Box::new(Store {
            registry: Registry::atomic(),
            described: Mutex::default(),
        }));
        metrics::set_global_recorder(store).expect("the only recorder of this test binary");
        m::describe();
        store
    })
}

/// What has been recorded up to now.
struct Recorded {
    counters: HashMap<(String, Labels), u64>,
    gauges: HashMap<(String, Labels), f64>,
    histograms: HashMap<(String, Labels), Vec<f64>>,
}

fn id(key: &Key) -> (String, Labels) {
    let labels = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    (key.name().to_owned(), labels)
}

fn recorded() -> Recorded {
    let r = &store().registry;
    Recorded {
        counters: r
            .get_counter_handles()
            .into_iter()
            .map(|(k, c)| (id(&k), c.load(Ordering::SeqCst)))
            .collect(),
        gauges: r
            .get_gauge_handles()
            .into_iter()
            .map(|(k, g)| (id(&k), f64::from_bits(g.load(Ordering::SeqCst))))
            .collect(),
        histograms: r
            .get_histogram_handles()
            .into_iter()
            .map(|(k, h)| (id(&k), h.data()))
            .collect(),
    }
}

impl Recorded {
    /// Every series of one worker: (name, labels).
    fn series_of(&self, worker: &str) -> BTreeSet<(String, Labels)> {
        let ids = self
            .counters
            .keys()
            .chain(self.gauges.keys())
            .chain(self.histograms.keys());
        ids.filter(|(_, l)| l.get("worker").map(String::as_str) == Some(worker))
            .cloned()
            .collect()
    }

    /// A counter summed over the series that carry all of `labels`.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .filter(|((n, l), _)| n == name && has(l, labels))
            .map(|(_, v)| *v)
            .sum()
    }

    /// A counter per value of `by`, over the series that carry all of `labels`.
    fn counter_by(&self, name: &str, by: &str, labels: &[(&str, &str)]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((n, l), v) in &self.counters {
            if n == name
                && has(l, labels)
                && let Some(key) = l.get(by)
            {
                *out.entry(key.clone()).or_default() += v;
            }
        }
        out
    }

    /// A gauge's value, summed over the series that carry all of `labels`.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.gauges
            .iter()
            .filter(|((n, l), _)| n == name && has(l, labels))
            .map(|(_, v)| *v)
            .sum()
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .iter()
            .filter(|((n, l), _)| n == name && has(l, labels))
            .flat_map(|(_, v)| v.iter().copied())
            .collect()
    }
}

fn has(l: &Labels, wanted: &[(&str, &str)]) -> bool {
    wanted
        .iter()
        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
}

/// Metrics a consumer registers only when they first happen.
const ON_FIRST_USE: [&str; 3] = [m::RETRIED_IN_PLACE, m::HANDLER_FAILURES, m::API_ERRORS];

#[tokio::test(start_paused = true)]
async fn a_consumer_registers_the_catalogues_series_with_the_worker_label_up_front() {
    store();
    let bus = bus_with_queue("upfront", 3, SECS(30)).await;
    let running = spawn(
        Consumer::new(bus.clone(), "upfront")
            .handler(handler_fn(|_d: Delivery| async move { Ok(()) }))
            .configure(|c| c.handler_name = "upfront-worker".into()),
    );
    tokio::time::sleep(SECS(1)).await;
    let series = recorded().series_of("upfront-worker");
    let names: BTreeSet<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    for doc in CATALOGUE {
        let per_consumer = doc.labels.contains(&"worker") && doc.labels.contains(&"queue");
        if !per_consumer || ON_FIRST_USE.contains(&doc.name) {
            continue;
        }
        assert!(names.contains(doc.name), "{} not registered", doc.name);
    }
    for (name, labels) in &series {
        let doc = CATALOGUE.iter().find(|d| d.name == name).expect(name);
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = doc.labels.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{name}");
        assert_eq!(labels["queue"], "upfront");
    }
    // 4 settled outcomes, 4 operations, and one series of each other metric.
    assert_eq!(series.len(), 17, "{series:#?}");
    // In Prometheus a histogram is a series per bucket, +Inf, _sum and _count.
    let exported: usize = series
        .iter()
        .map(|(name, _)| {
            let doc = CATALOGUE.iter().find(|d| d.name == name).unwrap();
            match (
                doc.kind,
                m::HISTOGRAM_BUCKETS.iter().find(|(n, _)| n == name),
            ) {
                (MetricKind::Histogram, Some((_, b))) => b.len() + 3,
                _ => 1,
            }
        })
        .sum();
    assert!(exported <= 35, "{exported} exported series per consumer");
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn settled_outcomes_add_up_to_what_was_received_exactly() {
    store();
    let bus = bus_with_queue("tally", 2, SECS(30)).await;
    let bodies = ["ok", "ok", "ok", "flaky", "flaky", "bad", "bad"];
    send_all(&bus, "tally", bodies.map(OutgoingMessage::new).to_vec()).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(
        faults::Call::Receive,
        faults::Fault::Fail {
            code: "AccessDenied",
            retryable: false,
        },
        Some(1),
    );
    faulty.inject(
        faults::Call::Delete,
        faults::Fault::Fail {
            code: "ThrottlingException",
            retryable: true,
        },
        Some(1),
    );
    let handler = handler_fn(|d: Delivery| async move {
        match d.message.body.as_str() {
            "flaky" if d.attempt == 1 => {
                Err(HandlerError::transient("dependency down").with_label("flaky_dep"))
            }
            "bad" => Err(HandlerError::permanent("field missing").with_label("bad_input")),
            _ => Ok(()),
        }
    });
    let running = spawn(
        Consumer::new(faulty, "tally")
            .handler(handler)
            .configure(|c| {
                c.handler_name = "tally-worker".into();
                c.retry = no_jitter(1);
                c.pollers = 1;
            }),
    );
    wait_drained(&bus, "tally", SECS(120)).await;
    // Long enough for a long poll on the empty queue to return nothing.
    tokio::time::sleep(SECS(25)).await;
    let report = running.stop().await;
    let r = recorded();
    let w = [("worker", "tally-worker")];
    let received = r.counter(m::RECEIVED, &w);
    let settled = r.counter_by(m::SETTLED, "outcome", &w);
    assert_eq!(received, report.received, "{report}");
    assert_eq!(received, settled.values().sum::<u64>(), "{settled:?}");
    let expected: BTreeMap<String, u64> = [
        ("dead_lettered", 2),
        ("released", 0),
        ("retried", 2),
        ("succeeded", 5),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    assert_eq!(settled, expected, "{report}");
    let failures = r.counter_by(m::HANDLER_FAILURES, "error_type", &w);
    let expected: BTreeMap<String, u64> = [("bad_input", 2), ("flaky_dep", 2)]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
    assert_eq!(failures, expected);
    let errors = r.counter_by(m::API_ERRORS, "error_type", &w);
    let expected: BTreeMap<String, u64> = [("access_denied", 1), ("throttled", 1)]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
    assert_eq!(errors, expected);
    let receives = r.counter(m::API_CALLS, &[w[0], ("operation", "ReceiveMessage")]);
    let timed = r.histogram(m::RECEIVE_DURATION, &w);
    assert_eq!(timed.len() as u64, receives, "every receive is timed");
    assert!(
        timed.iter().any(|s| *s >= 19.0),
        "a long poll on the empty queue waited: {timed:?}"
    );
    assert!(r.counter(m::EMPTY_RECEIVES, &w) >= 1);
    assert_eq!(r.histogram(m::HANDLER_DURATION, &w).len(), 9, "one per run");
    assert_eq!(r.gauge(m::IN_FLIGHT, &w), 0.0, "nothing held at the end");
    assert_eq!(
        r.gauge(m::CONCURRENCY_LIMIT, &w),
        10.0,
        "the default: max_in_flight"
    );
}

#[tokio::test(start_paused = true)]
async fn the_active_pollers_gauge_follows_adaptive_polling() {
    store();
    let bus = bus_with_queue("scaled", 3, SECS(30)).await;
    // A round trip per receive, so the pollers overlap as they would on SQS.
    let slow = LatencyTransport::new(bus.clone(), Duration::from_millis(20));
    let running = spawn(
        Consumer::new(slow, "scaled")
            .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
            .configure(|c| {
                c.handler_name = "scaled-worker".into();
                c.pollers = 3;
            }),
    );
    let w = [("worker", "scaled-worker")];
    // min_pollers while the queue is empty (the gauge is 0 only until the consumer starts).
    wait_for(SECS(5), || async {
        recorded().gauge(m::ACTIVE_POLLERS, &w) == 1.0
    })
    .await;
    tokio::time::sleep(SECS(30)).await;
    assert_eq!(recorded().gauge(m::ACTIVE_POLLERS, &w), 1.0);
    send_all(&bus, "scaled", numbered(1000)).await;
    wait_for(SECS(60), || async {
        recorded().gauge(m::ACTIVE_POLLERS, &w) == 3.0
    })
    .await;
    wait_drained(&bus, "scaled", SECS(60)).await;
    // The next receives come back empty, and each parks one poller.
    tokio::time::sleep(SECS(45)).await;
    assert_eq!(recorded().gauge(m::ACTIVE_POLLERS, &w), 1.0);
    // A stopped consumer takes its loops off the gauge.
    running.stop().await;
    assert_eq!(recorded().gauge(m::ACTIVE_POLLERS, &w), 0.0);
}

#[tokio::test(start_paused = true)]
async fn handler_failure_labels_are_bounded_per_consumer() {
    store();
    let bus = bus_with_queue("labels", 1, SECS(30)).await;
    send_all(&bus, "labels", numbered(40)).await;
    let handler = handler_fn(|d: Delivery| async move {
        let label = format!("code_{}", d.message.body);
        Err(HandlerError::permanent("no").with_label(label))
    });
    let running = spawn(
        Consumer::new(bus.clone(), "labels")
            .handler(handler)
            .configure(|c| c.handler_name = "labels-worker".into()),
    );
    wait_drained(&bus, "labels", SECS(60)).await;
    running.stop().await;
    let failures = recorded().counter_by(
        m::HANDLER_FAILURES,
        "error_type",
        &[("worker", "labels-worker")],
    );
    assert_eq!(failures.len(), m::MAX_ERROR_TYPES, "{failures:?}");
    assert_eq!(failures.values().sum::<u64>(), 40);
    assert_eq!(
        failures[m::OTHER_ERROR_TYPE],
        40 - (m::MAX_ERROR_TYPES as u64 - 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_oldest_message_age_comes_from_the_last_receive_and_drops_to_zero_when_empty() {
    store();
    let bus = bus_with_queue("aged", 3, SECS(30)).await;
    send_all(&bus, "aged", numbered(3)).await;
    // The queue stamps messages with the wall clock, which the paused test clock does not
    // move: the transport makes them look ten minutes old.
    let faulty = faults::Faulty::new(bus.clone());
    faulty.backdate_receives(SECS(600));
    let w = [("worker", "aged-worker")];
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(SECS(5)).await;
        Ok(())
    });
    let running = spawn(
        Consumer::new(faulty, "aged")
            .handler(handler)
            .configure(|c| {
                c.handler_name = "aged-worker".into();
                c.pollers = 1;
            }),
    );
    tokio::time::sleep(SECS(1)).await;
    let age = recorded().gauge(m::OLDEST_MESSAGE_AGE, &w);
    assert!((600.0..660.0).contains(&age), "{age}");
    wait_drained(&bus, "aged", SECS(60)).await;
    // The next receive finds the queue empty.
    tokio::time::sleep(SECS(25)).await;
    assert_eq!(recorded().gauge(m::OLDEST_MESSAGE_AGE, &w), 0.0);
    running.stop().await;
}

#[test]
fn every_metric_of_the_catalogue_is_described_with_its_unit() {
    let described = store().described.lock().unwrap().clone();
    for doc in CATALOGUE {
        let (unit, help) = described.get(doc.name).expect(doc.name);
        assert_eq!(*unit, Some(doc.unit), "{}", doc.name);
        assert_eq!(help, doc.help, "{}", doc.name);
    }
}
