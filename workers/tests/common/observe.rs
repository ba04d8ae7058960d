//! Reading `fleet run`'s observability endpoints in tests: the address it logs, `/metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::fleet_run::Process;

/// The `FLEET_LOG` filter that keeps a process quiet but for the line naming its endpoints.
pub const LOG_ENDPOINTS: &str = "warn,fleet_workers::observe=info";

/// The `[observability]` section serving on a free loopback port, reading queue counts every
/// second.
pub fn section() -> String {
    "[observability]\nlisten = \"127.0.0.1:0\"\nqueue_stats_interval = \"1s\"\n".to_owned()
}

/// The address in a JSON log line `observability endpoints listening`, if logged.
pub fn logged_address(logs: &str) -> Option<SocketAddr> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "observability endpoints listening")
        .and_then(|v| v["address"].as_str()?.parse().ok())
}

/// Waits until `process` logs its endpoints' address (it must log at info for
/// `fleet_workers::observe`: [`LOG_ENDPOINTS`]).
///
/// # Panics
/// When it does not within `limit`, or exits.
pub fn address(process: &mut Process, limit: Duration) -> SocketAddr {
    let started = Instant::now();
    loop {
        if let Some(a) = logged_address(&process.logs()) {
            return a;
        }
        assert!(process.running(), "fleet run exited: {}", process.logs());
        assert!(
            started.elapsed() < limit,
            "no endpoints address logged within {limit:?}: {}",
            process.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/metrics` of the endpoints at `address`.
///
/// # Panics
/// When it does not answer 200.
pub async fn scrape(address: SocketAddr) -> String {
    let answer = fleet_tests::http::get_within(address, "/metrics", Duration::from_secs(5))
        .await
        .expect("GET /metrics");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// The sum of every sample of `name` in an exposition text whose labels contain all of
/// `labels` (`worker="orders"`).
pub fn sum(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name && labels.iter().all(|x| series.contains(x)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The number of series (sample lines) in an exposition text.
pub fn series(exposition: &str) -> usize {
    exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Consumers a test started, as the probes see them (by worker name).
#[derive(Default)]
pub struct Consumers(pub std::sync::Mutex<Vec<(String, fleet_bus::consumer::ConsumerHandle)>>);

impl fleet_workers::observe::StatusSource for Consumers {
    fn statuses(&self) -> Vec<(String, fleet_bus::consumer::ConsumerStatus)> {
        let running = self.0.lock().unwrap();
        running
            .iter()
            .map(|(name, h)| (name.clone(), h.status()))
            .collect()
    }
}

impl Consumers {
    /// Adds a running consumer.
    pub fn push(&self, worker: &str, handle: fleet_bus::consumer::ConsumerHandle) {
        self.0.lock().unwrap().push((worker.to_owned(), handle));
    }

    /// Drains them all; every received message must have been settled.
    pub async fn shutdown(&self) {
        let running = std::mem::take(&mut *self.0.lock().unwrap());
        for (name, handle) in running {
            let report = handle.shutdown().await.unwrap();
            assert_eq!(report.received, report.settled(), "{name}: {report}");
        }
    }
}
