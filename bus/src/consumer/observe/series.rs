//! One consumer's metric handles. The common series are registered when the consumer starts,
//! so counting allocates nothing; rare ones (unusual outcomes, handler failures, API errors)
//! are registered on first use, so a healthy consumer exports few series.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, SharedString, counter, gauge, histogram};

use super::Operation;
use crate::metrics::{self as m, MAX_ERROR_TYPES, OTHER_ERROR_TYPE, outcome};

/// How a received message ended, as [`m::SETTLED`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Succeeded,
    Retried,
    DeadLettered,
    Released,
    LeaseLost,
    SettleFailed,
    Abandoned,
}

impl Settled {
    /// The common outcomes, registered up front, then the rare ones.
    const COMMON: [Settled; 4] = [
        Settled::Succeeded,
        Settled::Retried,
        Settled::DeadLettered,
        Settled::Released,
    ];

    fn label(self) -> &'static str {
        match self {
            Settled::Succeeded => outcome::SUCCEEDED,
            Settled::Retried => outcome::RETRIED,
            Settled::DeadLettered => outcome::DEAD_LETTERED,
            Settled::Released => outcome::RELEASED,
            Settled::LeaseLost => outcome::LEASE_LOST,
            Settled::SettleFailed => outcome::SETTLE_FAILED,
            Settled::Abandoned => outcome::ABANDONED,
        }
    }
}

/// The values of [`BusError::error_type`](crate::BusError::error_type).
const API_ERROR_TYPES: [&str; 8] = [
    "throttled",
    "timeout",
    "network",
    "not_found",
    "access_denied",
    "service",
    "client",
    "other",
];

pub(super) struct Series {
    worker: SharedString,
    queue: SharedString,
    received: Counter,
    settled: [Counter; 4],
    rare: [OnceLock<Counter>; 3],
    retried_in_place: OnceLock<Counter>,
    failures: Mutex<HashMap<String, Counter>>,
    pub handler_seconds: Histogram,
    pub receive_seconds: Histogram,
    pub empty_receives: Counter,
    pub extensions: Counter,
    calls: [Counter; 4],
    errors: [[OnceLock<Counter>; API_ERROR_TYPES.len()]; 4],
    pub in_flight: Gauge,
    pub oldest_age: Gauge,
    pub active_pollers: Gauge,
}

impl Series {
    pub fn new(queue: &str, worker: &str, concurrency: usize) -> Self {
        let w = SharedString::from(Arc::<str>::from(worker));
        let q = SharedString::from(Arc::<str>::from(queue));
        let plain =
            |name: &'static str| counter!(name, "worker" => w.clone(), "queue" => q.clone());
        let settled = Settled::COMMON.map(|o| {
            counter!(m::SETTLED, "worker" => w.clone(), "queue" => q.clone(), "outcome" => o.label())
        });
        let calls = Operation::ALL.map(|op| {
            counter!(m::API_CALLS, "worker" => w.clone(), "queue" => q.clone(), "operation" => op.name())
        });
        gauge!(m::CONCURRENCY_LIMIT, "worker" => w.clone(), "queue" => q.clone())
            .set(concurrency as f64);
        Self {
            received: plain(m::RECEIVED),
            settled,
            rare: Default::default(),
            retried_in_place: OnceLock::new(),
            failures: Mutex::new(HashMap::new()),
            handler_seconds: histogram!(m::HANDLER_DURATION, "worker" => w.clone(), "queue" => q.clone()),
            receive_seconds: histogram!(m::RECEIVE_DURATION, "worker" => w.clone(), "queue" => q.clone()),
            empty_receives: plain(m::EMPTY_RECEIVES),
            extensions: plain(m::LEASE_EXTENSIONS),
            calls,
            errors: Default::default(),
            in_flight: gauge!(m::IN_FLIGHT, "worker" => w.clone(), "queue" => q.clone()),
            oldest_age: gauge!(m::OLDEST_MESSAGE_AGE, "worker" => w.clone(), "queue" => q.clone()),
            active_pollers: gauge!(m::ACTIVE_POLLERS, "worker" => w.clone(), "queue" => q.clone()),
            worker: w,
            queue: q,
        }
    }

    pub fn received(&self, n: u64) {
        self.received.increment(n);
    }

    pub fn settled(&self, how: Settled) {
        let counter = match how {
            Settled::Succeeded => &self.settled[0],
            Settled::Retried => &self.settled[1],
            Settled::DeadLettered => &self.settled[2],
            Settled::Released => &self.settled[3],
            Settled::LeaseLost => self.rare(0, how),
            Settled::SettleFailed => self.rare(1, how),
            Settled::Abandoned => self.rare(2, how),
        };
        counter.increment(1);
    }

    fn rare(&self, i: usize, how: Settled) -> &Counter {
        self.rare[i].get_or_init(|| {
            counter!(m::SETTLED, "worker" => self.worker.clone(), "queue" => self.queue.clone(), "outcome" => how.label())
        })
    }

    pub fn retried_in_place(&self) {
        self.retried_in_place
            .get_or_init(|| {
                counter!(m::RETRIED_IN_PLACE, "worker" => self.worker.clone(), "queue" => self.queue.clone())
            })
            .increment(1);
    }

    /// Counts a handler failure under its label, or under `other` once the consumer has seen
    /// [`MAX_ERROR_TYPES`] distinct labels; returns the label it was counted under.
    pub fn handler_failed<'a>(&self, label: &'a str) -> &'a str {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = failures.get(label) {
            c.increment(1);
            return label;
        }
        let label = if failures.len() < MAX_ERROR_TYPES - 1 {
            label
        } else {
            OTHER_ERROR_TYPE
        };
        let c = failures.entry(label.to_owned()).or_insert_with(|| {
            counter!(m::HANDLER_FAILURES, "worker" => self.worker.clone(), "queue" => self.queue.clone(), "error_type" => label.to_owned())
        });
        c.increment(1);
        label
    }

    pub fn api_call(&self, op: Operation) {
        self.calls[op.index()].increment(1);
    }

    pub fn api_error(&self, op: Operation, error_type: &'static str) {
        let i = API_ERROR_TYPES
            .iter()
            .position(|t| *t == error_type)
            .unwrap_or(API_ERROR_TYPES.len() - 1);
        self.errors[op.index()][i]
            .get_or_init(|| {
                counter!(m::API_ERRORS, "worker" => self.worker.clone(), "queue" => self.queue.clone(),
                    "operation" => op.name(), "error_type" => API_ERROR_TYPES[i])
            })
            .increment(1);
    }
}
