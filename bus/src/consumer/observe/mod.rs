//! Every observable event of one consumer, each logged and counted in one place. Every series
//! carries `worker` (the handler name) and `queue`, so two consumers of one queue do not
//! overwrite each other.
//!
//! **One line per outcome.** Each decision of the engine is one line: a retry at info (with its
//! delay and reason), a dead-letter at warn (with its kind and reason), a success or a release at
//! debug. A handler's failure is told in the line of the decision it leads to, not in a line of
//! its own. Lines about a failing dependency (failed API calls, retries) are rate limited per
//! key ([`LogLimiter`]); dead-letters never are.

mod series;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use series::Series;
pub(crate) use series::Settled;

use super::settler::Verdict;
use crate::log_limit::{Admit, LogLimiter};
use crate::message::Message;

/// The queue operations a consumer makes, for per-operation series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// What a rate-limited line is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LineKey {
    /// Retries decided for failures with this label.
    Retry(String),
    /// Calls of an operation that failed as a whole, by error class.
    Call(Operation, &'static str),
    /// Entries of an operation's calls that failed, by error code.
    Entries(Operation, String),
}

impl std::fmt::Display for LineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineKey::Retry(label) => write!(f, "retries after {label}"),
            LineKey::Call(op, error_type) => {
                write!(f, "{} calls failing ({error_type})", op.name())
            }
            LineKey::Entries(op, code) => write!(f, "{} entries failing ({code})", op.name()),
        }
    }
}

/// One consumer's metric handles and log lines.
pub(crate) struct Observer {
    pub queue: String,
    pub worker: String,
    series: Series,
    lines: Mutex<LogLimiter<LineKey>>,
}

impl Observer {
    pub fn new(queue: &str, worker: &str, concurrency: usize) -> Self {
        Self {
            series: Series::new(queue, worker, concurrency),
            queue: queue.to_owned(),
            worker: worker.to_owned(),
            lines: Mutex::new(LogLimiter::default()),
        }
    }

    /// Whether a line about `key` passes the rate limit now, and how many were held back
    /// (`Some(None)` for none: the field is left out of the line).
    fn admit(&self, key: &LineKey) -> Option<Option<u64>> {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match lines.check(key, Instant::now()) {
            Admit::Log { suppressed } => Some((suppressed > 0).then_some(suppressed)),
            Admit::Suppress => None,
        }
    }

    /// Writes one line per key whose held-back lines are due to be reported.
    pub fn report_held_back(&self) {
        let due = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .overdue(Instant::now());
        for (key, suppressed) in due {
            tracing::warn!(queue = %self.queue, worker = %self.worker, about = %key, suppressed,
                "similar lines held back by the log rate limit");
        }
    }

    /// A receive answered (`Ok`) or failed, after `elapsed`.
    pub fn receive_answered(&self, elapsed: Duration, messages: Option<&[Message]>) {
        self.series.api_call(Operation::Receive);
        self.series.receive_seconds.record(elapsed.as_secs_f64());
        match messages {
            Some([]) => {
                self.series.empty_receives.increment(1);
                self.series.oldest_age.set(0.0);
            }
            Some(messages) => {
                let now = SystemTime::now();
                let oldest = messages
                    .iter()
                    .filter_map(|m| now.duration_since(m.system.sent_at).ok())
                    .max()
                    .unwrap_or_default();
                self.series.oldest_age.set(oldest.as_secs_f64());
            }
            None => {}
        }
    }

    /// The consumer's running loops went from `from` to `to`. The gauge moves by the difference,
    /// as `in_flight` does, so consumers of one queue in one process add up, and one that
    /// stops (`to` = 0) takes its loops off.
    pub fn pollers_active(&self, from: usize, to: usize) {
        self.series
            .active_pollers
            .increment(to as f64 - from as f64);
        if to > 0 {
            tracing::debug!(queue = %self.queue, worker = %self.worker, active = to, "long-poll loops scaled");
        }
    }

    /// Messages the settler took charge of.
    pub fn received(&self, n: usize) {
        self.series.received(n as u64);
        self.series.in_flight.increment(n as f64);
    }

    /// A message left the consumer: counted once, by how.
    pub fn settled(&self, how: Settled) {
        self.series.settled(how);
        self.series.in_flight.decrement(1.0);
    }

    pub fn retried_in_place(&self) {
        self.series.retried_in_place();
    }

    /// Leases given up in one pass of the settler: one line for all of them.
    pub fn leases_lost(&self, message_ids: &[String], why: &str) {
        if message_ids.is_empty() {
            return;
        }
        tracing::warn!(queue = %self.queue, worker = %self.worker, count = message_ids.len(), message_ids = ?Sample(message_ids), why,
            "leases lost; their handlers are cancelled and the messages will be redelivered");
    }

    pub fn lease_extended(&self, n: usize) {
        self.series.extensions.increment(n as u64);
    }

    /// Counts a handler failure; returns the `error_type` it was counted under.
    pub fn handler_failed<'a>(&self, label: &'a str) -> &'a str {
        self.series.handler_failed(label)
    }

    pub fn handler_time(&self, elapsed: Duration) {
        self.series.handler_seconds.record(elapsed.as_secs_f64());
    }

    pub fn api_call(&self, op: Operation) {
        self.series.api_call(op);
    }

    /// A call failed as a whole: counted, and one line with how many messages it carried.
    pub fn api_error(&self, op: Operation, count: usize, error: &crate::BusError) {
        let error_type = error.error_type();
        self.series.api_error(op, error_type);
        if let Some(suppressed) = self.admit(&LineKey::Call(op, error_type)) {
            tracing::warn!(queue = %self.queue, worker = %self.worker, operation = op.name(), count, error_type,
                code = error.code().unwrap_or("-"), %error, suppressed, "queue API call failed");
        }
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
        if let Some(suppressed) = self.admit(&LineKey::Entries(op, code.to_owned())) {
            tracing::warn!(queue = %self.queue, worker = %self.worker, operation = op.name(), code, count, of,
                error = example, suppressed, "entries of a batch call failed");
        }
    }

    /// The one log line of a decision: what the engine decided for a message, and why.
    pub fn decided(&self, message_id: &str, attempt: u32, verdict: &Verdict) {
        match verdict {
            Verdict::Ack => self.succeeded(message_id, attempt),
            Verdict::Retry {
                delay,
                attempt,
                reason,
                error_type,
                ..
            } => self.retry_decided(&RetryLine {
                message_id,
                attempt: *attempt,
                error_type,
                delay: *delay,
                reason,
                in_place: false,
            }),
            Verdict::DeadLetter { reason, .. } => {
                self.dead_letter_decided(message_id, reason.attempt, &reason.kind, &reason.message)
            }
            Verdict::Release(why) => self.release_decided(message_id, why),
        }
    }

    /// The one line of a success.
    fn succeeded(&self, message_id: &str, attempt: u32) {
        tracing::debug!(queue = %self.queue, worker = %self.worker, message_id, attempt, "message handled");
    }

    /// The one line of a retry (rate limited per error type).
    pub fn retry_decided(&self, r: &RetryLine<'_>) {
        let Some(suppressed) = self.admit(&LineKey::Retry(r.error_type.to_owned())) else {
            return;
        };
        let delay_ms = u64::try_from(r.delay.as_millis()).unwrap_or(u64::MAX);
        let what = if r.in_place {
            "handler failed; the FIFO message will be retried in place"
        } else {
            "handler failed; the message will be retried"
        };
        tracing::info!(queue = %self.queue, worker = %self.worker, message_id = r.message_id, attempt = r.attempt,
            error_type = r.error_type, delay_ms, reason = r.reason, suppressed, "{what}");
    }

    /// The one line of a dead-letter: never rate limited.
    fn dead_letter_decided(&self, message_id: &str, attempt: u32, kind: &str, reason: &str) {
        tracing::warn!(queue = %self.queue, worker = %self.worker, message_id, attempt, kind, reason,
            "message goes to the dead-letter queue");
    }

    /// The one line of a message handed back unprocessed.
    fn release_decided(&self, message_id: &str, why: &str) {
        tracing::debug!(queue = %self.queue, worker = %self.worker, message_id, why, "message released");
    }
}

/// What the line of a retry says.
pub(crate) struct RetryLine<'a> {
    pub message_id: &'a str,
    pub attempt: u32,
    pub error_type: &'a str,
    pub delay: Duration,
    pub reason: &'a str,
    /// A FIFO retry in place (the message keeps its lease).
    pub in_place: bool,
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
