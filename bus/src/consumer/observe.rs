//! Every observable event of one consumer, each logged and counted in one place. The metric
//! handles are registered once, when the consumer starts, so the hot path allocates no labels.
//! Every series carries `queue` and `consumer` (the handler name), so two consumers of one queue
//! do not overwrite each other.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::handler::FailureKind;
use super::settler::Cause;
use crate::events::names;

/// The queue operations a consumer makes, for per-operation series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Receive,
    Delete,
    ChangeVisibility,
    SendDeadLetter,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Receive,
        Operation::Delete,
        Operation::ChangeVisibility,
        Operation::SendDeadLetter,
    ];

    /// The AWS operation name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Receive => "ReceiveMessage",
            Operation::Delete => "DeleteMessageBatch",
            Operation::ChangeVisibility => "ChangeMessageVisibilityBatch",
            Operation::SendDeadLetter => "SendMessageBatch",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const FAILURE_KINDS: [&str; 4] = ["transient", "permanent", "panic", "timeout"];

/// One consumer's metric handles and log lines.
pub(crate) struct Observer {
    pub queue: String,
    pub consumer: String,
    received: Counter,
    acked: Counter,
    retried: Counter,
    retried_in_place: Counter,
    dead_lettered: Counter,
    released: Counter,
    lease_lost: Counter,
    abandoned: Counter,
    settle_failed: [Counter; 4],
    extended: Counter,
    failures: [Counter; 4],
    handler_seconds: Histogram,
    calls: [Counter; 4],
    errors: [Counter; 4],
    in_flight: Gauge,
}

impl Observer {
    pub fn new(queue: &str, consumer: &str) -> Self {
        let (q, c) = (queue.to_owned(), consumer.to_owned());
        let plain =
            |name: &'static str| counter!(name, "queue" => q.clone(), "consumer" => c.clone());
        let per_op = |name: &'static str| {
            Operation::ALL.map(|op| {
                counter!(name, "queue" => q.clone(), "consumer" => c.clone(), "operation" => op.name())
            })
        };
        Self {
            received: plain(names::RECEIVED),
            acked: plain(names::ACKED),
            retried: plain(names::RETRIED),
            retried_in_place: plain(names::RETRIED_IN_PLACE),
            dead_lettered: plain(names::DEAD_LETTERED),
            released: plain(names::RELEASED),
            lease_lost: plain(names::LEASE_LOST),
            abandoned: plain(names::ABANDONED),
            settle_failed: per_op(names::SETTLE_FAILED),
            extended: plain(names::LEASE_EXTENDED),
            failures: FAILURE_KINDS.map(|kind| {
                counter!(names::HANDLER_FAILURES, "queue" => q.clone(), "consumer" => c.clone(), "kind" => kind)
            }),
            handler_seconds: histogram!(names::HANDLER_SECONDS, "queue" => q.clone(), "consumer" => c.clone()),
            calls: per_op(names::API_CALLS),
            errors: per_op(names::API_ERRORS),
            in_flight: gauge!(names::IN_FLIGHT, "queue" => q.clone(), "consumer" => c.clone()),
            queue: q,
            consumer: c,
        }
    }

    pub fn received(&self, n: usize) {
        self.received.increment(n as u64);
        self.in_flight.increment(n as f64);
    }

    /// A message left the consumer (settled, lost or abandoned).
    fn left(&self) {
        self.in_flight.decrement(1.0);
    }

    pub fn acked(&self) {
        self.acked.increment(1);
        self.left();
    }

    pub fn retry_decided(&self, message_id: &str, attempt: u32, delay: Duration, reason: &str) {
        tracing::info!(queue = %self.queue, message_id, attempt, delay_ms = delay.as_millis() as u64, reason, "message will be retried");
    }

    pub fn retried(&self) {
        self.retried.increment(1);
        self.left();
    }

    pub fn retried_in_place(&self) {
        self.retried_in_place.increment(1);
    }

    pub fn dead_letter_decided(&self, message_id: &str, kind: &str, reason: &str) {
        tracing::warn!(queue = %self.queue, message_id, kind, reason, "message goes to the dead-letter queue");
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.increment(1);
        self.left();
    }

    pub fn released(&self) {
        self.released.increment(1);
        self.left();
    }

    pub fn lease_lost(&self) {
        self.lease_lost.increment(1);
        self.left();
    }

    /// Leases given up in one pass of the settler: one line for all of them.
    pub fn leases_lost(&self, message_ids: &[String], why: &str) {
        if message_ids.is_empty() {
            return;
        }
        tracing::warn!(queue = %self.queue, consumer = %self.consumer, count = message_ids.len(), message_ids = ?Sample(message_ids), why,
            "leases lost; their handlers are cancelled and the messages will be redelivered");
    }

    pub fn settle_failed(&self, op: Operation) {
        self.settle_failed[op.index()].increment(1);
        self.left();
    }

    pub fn abandoned(&self) {
        self.abandoned.increment(1);
        self.left();
    }

    pub fn lease_extended(&self, n: usize) {
        self.extended.increment(n as u64);
    }

    pub fn handler_failed(&self, message_id: &str, kind: FailureKind, cause: Cause, error: &str) {
        let kind = match cause {
            Cause::Panic => "panic",
            Cause::Timeout => "timeout",
            Cause::Handler | Cause::Engine => kind.as_str(),
        };
        tracing::warn!(queue = %self.queue, message_id, kind, error, "handler failed");
        let i = FAILURE_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.failures[i].increment(1);
    }

    pub fn handler_time(&self, elapsed: Duration) {
        self.handler_seconds.record(elapsed.as_secs_f64());
    }

    pub fn api_call(&self, op: Operation) {
        self.calls[op.index()].increment(1);
    }

    /// A call failed as a whole: one line, with how many messages it carried.
    pub fn api_error(&self, op: Operation, count: usize, error: &crate::BusError) {
        tracing::warn!(queue = %self.queue, consumer = %self.consumer, operation = op.name(), count, code = error.code().unwrap_or("-"), %error, "queue API call failed");
        self.errors[op.index()].increment(1);
    }

    /// Some entries of a batch call failed with one code: one line for all of them.
    pub fn entries_failed(
        &self,
        op: Operation,
        code: &str,
        count: usize,
        of: usize,
        example: &str,
    ) {
        tracing::warn!(queue = %self.queue, operation = op.name(), code, count, of, error = example, "entries of a batch call failed");
    }
}

/// The first few message ids of a long list, for one log line.
struct Sample<'a>(&'a [String]);

impl std::fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 5;
        let mut list = f.debug_list();
        list.entries(self.0.iter().take(SHOWN));
        if self.0.len() > SHOWN {
            list.entry(&format_args!("… {} more", self.0.len() - SHOWN));
        }
        list.finish()
    }
}
