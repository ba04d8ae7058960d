//! What can go wrong in the adapter.

use fleet_bus::BusError;

/// Why the adapter could not start or could not read an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// The queue or its dead-letter queue could not be resolved, or a setting cannot work.
    #[error("starting the adapter failed")]
    Bus(#[from] BusError),
    /// An event record is not an SQS record Fleet can read.
    #[error("unreadable record: {0}")]
    Record(String),
    /// The execution environment's configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
}
