//! The bus's metric catalogue: every metric the consumer engine, the producer and the idempotency
//! layer record, declared once with its type, unit, labels and meaning. [`describe`] registers
//! the descriptions (Prometheus `HELP`) with the installed recorder; exporting is the binary's
//! business. [`MetricDoc`] is the shape every Fleet crate's catalogue uses.
//!
//! Naming rules, checked by [`MetricDoc::problems`]: a `fleet_` prefix, base units (`_seconds`),
//! `_total` on counters and only on counters, and labels only from [`ALLOWED_LABELS`], whose
//! values are bounded (never a message id, an address or free text).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// What kind of metric a catalogue entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up; its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A Prometheus histogram with fixed buckets.
    Histogram,
}

/// One metric of a catalogue: what the README table and the tests read.
#[derive(Clone, Copy, Debug)]
pub struct MetricDoc {
    /// The metric's name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its unit (`Seconds`, or `Count` for messages, calls and other counts).
    pub unit: Unit,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// One sentence: what it measures (the `HELP` text).
    pub help: &'static str,
}

/// The only label names a Fleet metric may carry: each has a bounded set of values.
pub const ALLOWED_LABELS: [&str; 5] = ["worker", "queue", "outcome", "operation", "error_type"];

impl MetricDoc {
    /// Where this entry breaks the naming rules; empty when it keeps them all.
    pub fn problems(&self) -> Vec<String> {
        let mut found = Vec::new();
        let name = self.name;
        if !name.starts_with("fleet_") {
            found.push(format!("{name}: no fleet_ prefix"));
        }
        let total = name.ends_with("_total");
        if total != (self.kind == MetricKind::Counter) {
            found.push(format!(
                "{name}: _total must end counters and only counters"
            ));
        }
        if name.ends_with("_seconds") != (self.unit == Unit::Seconds) {
            found.push(format!("{name}: a time is in seconds, named _seconds"));
        }
        if self.kind == MetricKind::Histogram && self.unit != Unit::Seconds {
            found.push(format!("{name}: histograms here measure seconds"));
        }
        let base = [Unit::Seconds, Unit::Count, Unit::CountPerSecond];
        if !base.contains(&self.unit) {
            found.push(format!("{name}: not a base unit ({:?})", self.unit));
        }
        for label in self.labels {
            if !ALLOWED_LABELS.contains(label) {
                found.push(format!("{name}: label {label} is not allowed"));
            }
        }
        if self.help.is_empty() {
            found.push(format!("{name}: no help text"));
        }
        found
    }
}

/// Registers the descriptions (help text and unit) of every entry of `catalogue`.
pub fn describe_all(catalogue: &[MetricDoc]) {
    for m in catalogue {
        match m.kind {
            MetricKind::Counter => describe_counter!(m.name, m.unit, m.help),
            MetricKind::Gauge => describe_gauge!(m.name, m.unit, m.help),
            MetricKind::Histogram => describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

/// Registers the descriptions of the bus's metrics ([`CATALOGUE`]).
pub fn describe() {
    describe_all(CATALOGUE);
}

/// Label names.
pub mod label {
    /// The consumer's `handler_name` (`producer` for a producer's calls).
    pub const WORKER: &str = "worker";
    /// The queue (or topic) name.
    pub const QUEUE: &str = "queue";
    /// How something ended.
    pub const OUTCOME: &str = "outcome";
    /// The API operation, as AWS names it.
    pub const OPERATION: &str = "operation";
    /// A bounded class of error.
    pub const ERROR_TYPE: &str = "error_type";
}

/// The `outcome` values of [`SETTLED`]: how each received message ended.
pub mod outcome {
    /// Handled and deleted.
    pub const SUCCEEDED: &str = "succeeded";
    /// Made visible again after a backoff.
    pub const RETRIED: &str = "retried";
    /// Sent to the dead-letter queue with a reason, then deleted.
    pub const DEAD_LETTERED: &str = "dead_lettered";
    /// Handed back unprocessed (visibility 0).
    pub const RELEASED: &str = "released";
    /// Its lease could not be kept; the handler was cancelled. Registered on first use.
    pub const LEASE_LOST: &str = "lease_lost";
    /// Its settling call failed for good; it reappears after its visibility timeout. Registered
    /// on first use.
    pub const SETTLE_FAILED: &str = "settle_failed";
    /// Not settled by shutdown's deadline. Registered on first use.
    pub const ABANDONED: &str = "abandoned";
}

/// The `worker` label of a producer's calls.
pub const PRODUCER_WORKER: &str = "producer";
/// The `error_type` a consumer's [`HANDLER_FAILURES`] falls back to beyond
/// [`MAX_ERROR_TYPES`] distinct values.
pub const OTHER_ERROR_TYPE: &str = "other";
/// Distinct `error_type` values of [`HANDLER_FAILURES`] per consumer, at most: a worker's codes
/// are a handful; a label built from data would otherwise grow the series without bound.
pub const MAX_ERROR_TYPES: usize = 16;

/// Messages received from a queue.
pub const RECEIVED: &str = "fleet_messages_received_total";
/// How each received message ended, by `outcome` (see [`outcome`]).
pub const SETTLED: &str = "fleet_messages_settled_total";
/// FIFO tries repeated in place after a transient failure.
pub const RETRIED_IN_PLACE: &str = "fleet_messages_retried_in_place_total";
/// Handler failures by `error_type`.
pub const HANDLER_FAILURES: &str = "fleet_handler_failures_total";
/// Handler run time.
pub const HANDLER_DURATION: &str = "fleet_handler_duration_seconds";
/// Messages received and not yet settled.
pub const IN_FLIGHT: &str = "fleet_messages_in_flight";
/// The consumer's handler concurrency limit.
pub const CONCURRENCY_LIMIT: &str = "fleet_concurrency_limit";
/// Long-poll loops the consumer runs now (adaptive polling, between `min_pollers` and `pollers`).
pub const ACTIVE_POLLERS: &str = "fleet_active_pollers";
/// Visibility extensions of in-flight messages.
pub const LEASE_EXTENSIONS: &str = "fleet_lease_extensions_total";
/// Time of a receive call, long poll included.
pub const RECEIVE_DURATION: &str = "fleet_receive_duration_seconds";
/// Receives that returned no message.
pub const EMPTY_RECEIVES: &str = "fleet_empty_receives_total";
/// Queue API calls by `operation`.
pub const API_CALLS: &str = "fleet_api_calls_total";
/// Queue API calls that failed as a whole, by `operation` and `error_type`.
pub const API_ERRORS: &str = "fleet_api_errors_total";
/// Age of the oldest message in the last receive that returned messages (0 after an empty one).
pub const OLDEST_MESSAGE_AGE: &str = "fleet_oldest_message_age_seconds";
/// Deliveries whose work an idempotency record showed done already.
pub const IDEMPOTENCY_HITS: &str = "fleet_idempotency_hits_total";
/// Idempotency claims refused or lost, by `outcome` (`in_progress`, `key_reused`, `not_held`).
pub const IDEMPOTENCY_CONFLICTS: &str = "fleet_idempotency_conflicts_total";
/// Idempotency store calls that failed, by `operation` (`claim`, `renew`, `complete`,
/// `release`).
pub const IDEMPOTENCY_STORE_ERRORS: &str = "fleet_idempotency_store_errors_total";

/// Buckets of [`HANDLER_DURATION`], in seconds.
pub const HANDLER_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0];
/// Buckets of [`RECEIVE_DURATION`], in seconds: a long poll waits up to 20 s.
pub const RECEIVE_BUCKETS: &[f64] = &[0.01, 0.1, 1.0, 5.0, 10.0, 20.0];
/// Each histogram of the catalogue with its buckets, for the exporter.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (HANDLER_DURATION, HANDLER_BUCKETS),
    (RECEIVE_DURATION, RECEIVE_BUCKETS),
];

const WQ: &[&str] = &[label::WORKER, label::QUEUE];

/// Every metric of the bus.
pub const CATALOGUE: &[MetricDoc] = &[
    MetricDoc {
        name: RECEIVED,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: WQ,
        help: "Messages received from the queue.",
    },
    MetricDoc {
        name: SETTLED,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::QUEUE, label::OUTCOME],
        help: "How each received message ended: succeeded, retried, dead_lettered, released, lease_lost, settle_failed or abandoned.",
    },
    MetricDoc {
        name: RETRIED_IN_PLACE,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: WQ,
        help: "FIFO tries repeated in place after a transient failure.",
    },
    MetricDoc {
        name: HANDLER_FAILURES,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::QUEUE, label::ERROR_TYPE],
        help: "Handler failures by the handler error's label (timeout, panic, or the worker's code).",
    },
    MetricDoc {
        name: HANDLER_DURATION,
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        labels: WQ,
        help: "Handler run time.",
    },
    MetricDoc {
        name: IN_FLIGHT,
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        labels: WQ,
        help: "Messages received and not yet settled.",
    },
    MetricDoc {
        name: CONCURRENCY_LIMIT,
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        labels: WQ,
        help: "Handlers the consumer runs at once, at most.",
    },
    MetricDoc {
        name: ACTIVE_POLLERS,
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        labels: WQ,
        help: "Long-poll loops the consumer runs now: from min_pollers, one more while receives come back full, one fewer after each partial, empty or failed receive, up to pollers.",
    },
    MetricDoc {
        name: LEASE_EXTENSIONS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: WQ,
        help: "Visibility extensions of messages being handled or settled.",
    },
    MetricDoc {
        name: RECEIVE_DURATION,
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        labels: WQ,
        help: "Time of a receive call, long poll included.",
    },
    MetricDoc {
        name: EMPTY_RECEIVES,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: WQ,
        help: "Receives that returned no message.",
    },
    MetricDoc {
        name: API_CALLS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::QUEUE, label::OPERATION],
        help: "Queue API calls made by the engine or a producer (worker=producer).",
    },
    MetricDoc {
        name: API_ERRORS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[
            label::WORKER,
            label::QUEUE,
            label::OPERATION,
            label::ERROR_TYPE,
        ],
        help: "Queue API calls that failed as a whole, by error class.",
    },
    MetricDoc {
        name: OLDEST_MESSAGE_AGE,
        kind: MetricKind::Gauge,
        unit: Unit::Seconds,
        labels: WQ,
        help: "Age of the oldest message in the last receive that returned messages; 0 after a receive that returned none.",
    },
    MetricDoc {
        name: IDEMPOTENCY_HITS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::OUTCOME],
        help: "Deliveries whose work an idempotency record showed done already.",
    },
    MetricDoc {
        name: IDEMPOTENCY_CONFLICTS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::OUTCOME],
        help: "Idempotency claims refused or lost: in_progress, key_reused, not_held.",
    },
    MetricDoc {
        name: IDEMPOTENCY_STORE_ERRORS,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::WORKER, label::OPERATION],
        help: "Idempotency store calls that failed: claim, renew, complete, release.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_keeps_the_naming_rules() {
        let problems: Vec<String> = CATALOGUE.iter().flat_map(MetricDoc::problems).collect();
        assert!(problems.is_empty(), "{problems:#?}");
        let mut names: Vec<&str> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "a name appears twice");
    }

    #[test]
    fn every_histogram_has_buckets_and_every_bucket_list_a_histogram() {
        for m in CATALOGUE.iter().filter(|m| m.kind == MetricKind::Histogram) {
            let buckets = HISTOGRAM_BUCKETS.iter().find(|(n, _)| *n == m.name);
            let Some((_, b)) = buckets else {
                panic!("{} has no buckets", m.name)
            };
            assert!(
                b.windows(2).all(|w| w[0] < w[1]),
                "{} buckets unsorted",
                m.name
            );
        }
        assert_eq!(
            HISTOGRAM_BUCKETS.len(),
            CATALOGUE
                .iter()
                .filter(|m| m.kind == MetricKind::Histogram)
                .count()
        );
    }

    #[test]
    fn the_rules_catch_what_they_name() {
        let bad = MetricDoc {
            name: "messages_seconds",
            kind: MetricKind::Gauge,
            unit: Unit::Milliseconds,
            labels: &["message_id"],
            help: "",
        };
        let found = bad.problems();
        for needle in ["prefix", "seconds", "base unit", "message_id", "help"] {
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "{needle}: {found:#?}"
            );
        }
        let counter = MetricDoc {
            name: "fleet_things",
            kind: MetricKind::Counter,
            unit: Unit::Count,
            labels: &[],
            help: "x",
        };
        assert_eq!(counter.problems().len(), 1, "{:?}", counter.problems());
    }
}
