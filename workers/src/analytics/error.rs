//! The analytics worker's one error type, and the failure of one event's counter write.

use std::fmt;
use std::sync::Arc;

use fleet_schemas::SchemaError;

/// A cause shared by every event of a failed write (one call fails for all its events).
pub type SharedCause = Arc<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the analytics worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// The message is not a valid Fleet event.
    #[error("message cannot be decoded")]
    Schema(#[source] SchemaError),
    /// A property that a counter needs (`amount_cents`, `currency` of `order_paid`) is missing
    /// or invalid, so the event cannot be counted exactly.
    #[error("invalid `payload.properties.{property}` for {name}: {reason}")]
    InvalidProperty {
        /// The event's name.
        name: String,
        /// The property at fault.
        property: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The event's counters could not be written this time.
    #[error("writing the event's counters failed")]
    Write(#[source] WriteFailure),
    /// Reading counters failed.
    #[error("reading the counters failed")]
    Read(#[source] SharedCause),
    /// A counter query that cannot be answered as asked.
    #[error("{0}")]
    Query(String),
}

/// Why one event's counter write failed; retrying may succeed. Cloned to every event that
/// took part in the failed call.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{label}")]
pub struct WriteFailure {
    /// The reason's label, such as `transaction_conflict` or `dynamodb_unavailable`.
    pub label: &'static str,
    /// What failed.
    #[source]
    pub cause: Option<SharedCause>,
}

impl WriteFailure {
    /// A failure with a label and a cause.
    pub fn new(label: &'static str, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            label,
            cause: Some(Arc::new(cause)),
        }
    }

    /// A failure with only a label.
    pub fn label(label: &'static str) -> Self {
        Self { label, cause: None }
    }
}

impl PartialEq for WriteFailure {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label
    }
}

impl Eq for WriteFailure {}

/// A plain-text cause (a cancellation reason's message).
#[derive(Debug)]
pub(crate) struct Said(pub String);

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Said {}
