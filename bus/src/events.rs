//! Every observable event of the consumer, each logged and counted in one place. Metric names are
//! declared here once; exporting them (Prometheus) is the binary's business.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Metric names, declared once.
pub mod names {
    /// Messages received from a queue.
    pub const RECEIVED: &str = "fleet_messages_received_total";
    /// Messages whose handler succeeded and that were deleted.
    pub const ACKED: &str = "fleet_messages_acked_total";
    /// Messages scheduled for another attempt after a transient failure.
    pub const RETRIED: &str = "fleet_messages_retried_total";
    /// FIFO messages tried again in place after a transient failure.
    pub const RETRIED_IN_PLACE: &str = "fleet_messages_retried_in_place_total";
    /// Messages sent to the dead-letter queue with a reason.
    pub const DEAD_LETTERED: &str = "fleet_messages_dead_lettered_total";
    /// Messages handed back unprocessed (visibility 0), at shutdown or behind a failed FIFO head.
    pub const RELEASED: &str = "fleet_messages_released_total";
    /// Messages whose lease could not be kept: the handler was cancelled.
    pub const LEASE_LOST: &str = "fleet_messages_lease_lost_total";
    /// Messages whose settlement call failed; they reappear after their visibility timeout.
    pub const SETTLE_FAILED: &str = "fleet_messages_settle_failed_total";
    /// Visibility extensions of in-flight messages.
    pub const LEASE_EXTENDED: &str = "fleet_lease_extensions_total";
    /// Handler failures by kind (transient, permanent, panic, timeout).
    pub const HANDLER_FAILURES: &str = "fleet_handler_failures_total";
    /// Handler run time.
    pub const HANDLER_SECONDS: &str = "fleet_handler_duration_seconds";
    /// Queue API calls by operation.
    pub const API_CALLS: &str = "fleet_api_calls_total";
    /// Queue API calls that failed as a whole.
    pub const API_ERRORS: &str = "fleet_api_errors_total";
    /// Messages received and not yet decided.
    pub const IN_FLIGHT: &str = "fleet_messages_in_flight";
}

/// Labels every consumer event carries.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub queue: String,
}

impl Scope {
    pub fn received(&self, n: usize) {
        counter!(names::RECEIVED, "queue" => self.queue.clone()).increment(n as u64);
    }

    pub fn acked(&self, n: usize) {
        counter!(names::ACKED, "queue" => self.queue.clone()).increment(n as u64);
    }

    pub fn retry_decided(&self, message_id: &str, attempt: u32, delay: Duration, reason: &str) {
        tracing::info!(queue = %self.queue, message_id, attempt, delay_ms = delay.as_millis() as u64, reason, "message will be retried");
    }

    pub fn retried(&self) {
        counter!(names::RETRIED, "queue" => self.queue.clone()).increment(1);
    }

    pub fn retried_in_place(&self) {
        counter!(names::RETRIED_IN_PLACE, "queue" => self.queue.clone()).increment(1);
    }

    pub fn dead_letter_decided(&self, message_id: &str, kind: &str, reason: &str) {
        tracing::warn!(queue = %self.queue, message_id, kind, reason, "message goes to the dead-letter queue");
    }

    pub fn dead_lettered(&self) {
        counter!(names::DEAD_LETTERED, "queue" => self.queue.clone()).increment(1);
    }

    pub fn released(&self, n: usize, why: &'static str) {
        if n > 0 {
            tracing::debug!(queue = %self.queue, count = n, why, "messages released");
        }
        counter!(names::RELEASED, "queue" => self.queue.clone()).increment(n as u64);
    }

    pub fn lease_lost(&self, message_id: &str, why: &str) {
        tracing::warn!(queue = %self.queue, message_id, why, "lease lost; handler cancelled, the message will be redelivered");
        counter!(names::LEASE_LOST, "queue" => self.queue.clone()).increment(1);
    }

    pub fn settle_failed(&self, operation: &'static str, message_id: &str, error: &str) {
        tracing::error!(queue = %self.queue, operation, message_id, error, "settling failed; the message reappears after its visibility timeout");
        counter!(names::SETTLE_FAILED, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }

    pub fn lease_extended(&self, n: usize) {
        counter!(names::LEASE_EXTENDED, "queue" => self.queue.clone()).increment(n as u64);
    }

    pub fn handler_failed(&self, message_id: &str, kind: &'static str, error: &str) {
        tracing::warn!(queue = %self.queue, message_id, kind, error, "handler failed");
        counter!(names::HANDLER_FAILURES, "queue" => self.queue.clone(), "kind" => kind)
            .increment(1);
    }

    pub fn handler_time(&self, elapsed: Duration) {
        histogram!(names::HANDLER_SECONDS, "queue" => self.queue.clone())
            .record(elapsed.as_secs_f64());
    }

    pub fn api_call(&self, operation: &'static str) {
        counter!(names::API_CALLS, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }

    pub fn api_error(&self, operation: &'static str, error: &crate::BusError) {
        tracing::warn!(queue = %self.queue, operation, %error, "queue API call failed");
        counter!(names::API_ERRORS, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }

    pub fn in_flight(&self, n: usize) {
        gauge!(names::IN_FLIGHT, "queue" => self.queue.clone()).set(n as f64);
    }
}
