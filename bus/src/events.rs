//! Metric names, declared once, and the events of a producer's calls. A consumer's events are
//! logged and counted in `consumer::observe`, with handles registered once per consumer.
//! Exporting the metrics (Prometheus) is the binary's business.

use metrics::counter;

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
    /// Messages received and not yet settled, by queue and consumer.
    pub const IN_FLIGHT: &str = "fleet_messages_in_flight";
    /// Messages whose settlement had not finished when shutdown's deadline passed; they
    /// reappear after their visibility timeout.
    pub const ABANDONED: &str = "fleet_messages_abandoned_total";
    /// Deliveries whose work an idempotency record showed done already, by `scope` and `outcome`.
    pub const IDEMPOTENCY_HITS: &str = "fleet_idempotency_hits_total";
    /// Idempotency claims refused or lost, by `scope` and `outcome` (`in_progress`,
    /// `key_reused`, `not_held`).
    pub const IDEMPOTENCY_CONFLICTS: &str = "fleet_idempotency_conflicts_total";
    /// Idempotency store calls that failed, by `scope` and `operation` (`claim`, `renew`,
    /// `complete`, `release`).
    pub const IDEMPOTENCY_STORE_ERRORS: &str = "fleet_idempotency_store_errors_total";
}

/// Labels of a producer's calls; a consumer has its own observer, with handles registered once.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub queue: String,
}

impl Scope {
    pub fn api_call(&self, operation: &'static str) {
        counter!(names::API_CALLS, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }

    pub fn api_error(&self, operation: &'static str, error: &crate::BusError) {
        tracing::warn!(queue = %self.queue, operation, %error, "queue API call failed");
        counter!(names::API_ERRORS, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }
}
