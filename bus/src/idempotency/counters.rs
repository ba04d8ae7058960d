//! The idempotency counters of a worker, shared by the [`IdempotencyLayer`](super::IdempotencyLayer)
//! and by workers that claim records themselves (the email worker), so a dashboard reads every
//! worker's hits and conflicts from the same two metrics.

use metrics::counter;

use crate::metrics::{IDEMPOTENCY_CONFLICTS, IDEMPOTENCY_HITS};

/// The outcomes of [`IDEMPOTENCY_CONFLICTS`]: a claim found the record held, a key came back with
/// another payload, a holder lost its record to another.
pub const CONFLICTS: [&str; 3] = ["in_progress", "key_reused", "not_held"];

/// Registers `worker`'s idempotency counters at zero, so a rate over them reads 0 before the
/// first hit instead of nothing.
pub fn register(worker: &str) {
    counter!(IDEMPOTENCY_HITS, "worker" => worker.to_owned(), "outcome" => "completed")
        .increment(0);
    for outcome in CONFLICTS {
        counter!(IDEMPOTENCY_CONFLICTS, "worker" => worker.to_owned(), "outcome" => outcome)
            .increment(0);
    }
}

/// A delivery whose work a record showed done already.
pub fn hit(worker: &str) {
    counter!(IDEMPOTENCY_HITS, "worker" => worker.to_owned(), "outcome" => "completed")
        .increment(1);
}

/// A claim refused or lost; `outcome` is one of [`CONFLICTS`].
pub fn conflict(worker: &str, outcome: &'static str) {
    counter!(IDEMPOTENCY_CONFLICTS, "worker" => worker.to_owned(), "outcome" => outcome)
        .increment(1);
}
