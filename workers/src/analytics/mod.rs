//! The analytics worker: counts events per name and time bucket (minute, hour, day, UTC), per
//! subject and day, and order revenue per currency and day, exactly once per event id; emails
//! sent also per template.
//!
//! - [`aggregate`]: the pure core, from a decoded event to its counter deltas;
//! - [`store`]: [`CounterStore`], the small trait the handler writes through, and
//!   [`MemoryCounterStore`] for the embedded transport;
//! - [`dynamo`]: [`DynamoCounterStore`] on the single table: one `TransactWriteItems` per batch,
//!   a deduplication item per event and one `ADD` per distinct counter, write-sharded;
//! - [`handler`]: [`AnalyticsWorker`], the batch handler;
//! - [`read`]: counters over a range of buckets, for `fleet counters`.

pub mod aggregate;
pub mod dynamo;
mod error;
pub mod handler;
pub mod read;
pub mod store;
mod transaction;
pub mod wcu;

pub use aggregate::{Bucket, Counted, EventDeltas, Series, email_sent_template};
pub use dynamo::{DynamoCounterConfig, DynamoCounterStore, WriteStats};
pub use error::{AnalyticsError, WriteFailure};
pub use handler::AnalyticsWorker;
pub use read::{BucketValue, CounterQuery};
pub use store::{CounterStore, EventOutcome, MemoryCounterStore};

/// Metric names, declared once (in the workers' catalogue).
pub mod metric {
    pub use crate::observe::metrics::{
        ANALYTICS_EVENTS as EVENTS, ANALYTICS_TRANSACTIONS as TRANSACTIONS,
    };
}
