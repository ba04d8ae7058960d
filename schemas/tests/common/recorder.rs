//! A process-wide metrics recorder that keeps counters by name and labels, so a test can read what
//! the code under test counted. Tests use unique label values (queue names) to stay independent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

#[derive(Default)]
pub struct Counters {
    values: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

fn render(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Counters {
    /// The counter's value, 0 if it was never touched.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = render(name, labels);
        self.values
            .lock()
            .unwrap()
            .get(&key)
            .map_or(0, |v| v.load(Ordering::SeqCst))
    }
}

/// The installed recorder's counters (installed on first use).
pub fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<&'static Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let counters: &'static Counters = Box::leak(Box::default());
        metrics::set_global_recorder(Installed(counters)).expect("no other recorder in this test");
        counters
    })
}

struct Installed(&'static Counters);

struct Cell(Arc<AtomicU64>);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

impl Recorder for Installed {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let rendered = render(key.name(), &labels);
        let cell = self
            .0
            .values
            .lock()
            .unwrap()
            .entry(rendered)
            .or_default()
            .clone();
        Counter::from_arc(Arc::new(Cell(cell)))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
