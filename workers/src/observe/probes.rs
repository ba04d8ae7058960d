//! What `/healthz`, `/readyz` and `fleet_worker_ready` read: the process's phase, set by
//! `fleet run` as it starts and drains, and its running consumers' statuses.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use fleet_bus::consumer::ConsumerStatus;

use super::health::{self, Phase, Verdict};
use super::metrics::WORKER_READY;

/// Where the consumers' statuses come from (`fleet run`'s running workers, or a test's consumer).
pub trait StatusSource: Send + Sync {
    /// Each running consumer: its worker name (the `worker` label) and its status.
    fn statuses(&self) -> Vec<(String, ConsumerStatus)>;
}

/// The shared state of the probes; clones share it.
#[derive(Clone)]
pub struct Probes {
    inner: Arc<Inner>,
}

struct Inner {
    phase: AtomicU8,
    source: RwLock<Option<Arc<dyn StatusSource>>>,
    unready_after: Duration,
    /// The workers `fleet_worker_ready` has a series for, to zero them when draining.
    known: Mutex<Vec<String>>,
}

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const DRAINING: u8 = 2;

impl Probes {
    /// A starting process: alive, not ready. Receives failing for longer than `unready_after`
    /// make a worker unready.
    pub fn new(unready_after: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(STARTING),
                source: RwLock::new(None),
                unready_after,
                known: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The workers have started: their statuses come from `source` from now on (unless the
    /// process is draining already).
    pub fn running(&self, source: Arc<dyn StatusSource>) {
        *self
            .inner
            .source
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
        let _ = self.inner.phase.compare_exchange(
            STARTING,
            RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.update_ready_gauges();
    }

    /// A signal came: never ready again, from this call on.
    pub fn draining(&self) {
        self.inner.phase.store(DRAINING, Ordering::Release);
        self.update_ready_gauges();
    }

    /// Where the process is.
    pub fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::Acquire) {
            STARTING => Phase::Starting,
            RUNNING => Phase::Running,
            _ => Phase::Draining,
        }
    }

    fn statuses(&self) -> Vec<(String, ConsumerStatus)> {
        let source = self
            .inner
            .source
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        source.map(|s| s.statuses()).unwrap_or_default()
    }

    /// The `/readyz` verdict now.
    pub fn readiness(&self) -> Verdict {
        let phase = self.phase();
        health::readiness(phase, &self.statuses(), self.inner.unready_after)
    }

    /// The `/healthz` verdict now.
    pub fn liveness(&self) -> Verdict {
        let phase = self.phase();
        health::liveness(phase, &self.statuses(), health::stalled_reason)
    }

    /// Sets `fleet_worker_ready` of every worker by the rule of `/readyz` (0 for all of them
    /// while the process is not running).
    pub fn update_ready_gauges(&self) {
        let phase = self.phase();
        let statuses = self.statuses();
        let mut known = self
            .inner
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (worker, status) in &statuses {
            let ready = phase == Phase::Running
                && health::unready_reason(status, self.inner.unready_after).is_none();
            metrics::gauge!(WORKER_READY, "worker" => worker.clone())
                .set(f64::from(u8::from(ready)));
            if !known.contains(worker) {
                known.push(worker.clone());
            }
        }
        // A worker that is gone (drained) is not ready.
        for worker in known.iter() {
            if !statuses.iter().any(|(w, _)| w == worker) {
                metrics::gauge!(WORKER_READY, "worker" => worker.clone()).set(0.0);
            }
        }
    }
}
