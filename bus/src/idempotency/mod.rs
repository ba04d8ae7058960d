//! Idempotent handling: a small store trait ([`IdempotencyStore`]) with an in-memory
//! implementation, the payload hash, and a tower layer ([`IdempotencyLayer`]) that runs a
//! handler once per key.
//!
//! Records carry the attributes and units of AWS Lambda Powertools' idempotency utility (`id`,
//! `expiration` in epoch seconds, `in_progress_expiration` in epoch milliseconds, `status`,
//! `data`, `validation`), plus `holder`: the token of the claim that holds the record, so a
//! holder whose lease ended and was taken over can never complete or release it.
//!
//! The DynamoDB implementation lives in `fleet-workers`, which depends on the SDK; both pass the
//! conformance suite in `fleet_bus::scenarios::idempotency` (feature `scenarios`).

mod clock;
pub mod counters;
mod hash;
mod layer;
mod memory;
mod record;
mod run;
mod store;

pub use clock::Clock;
pub use hash::payload_hash;
pub use layer::{DEFAULT_EXPIRES_AFTER, IdempotencyLayer, Idempotent, KeyFn, Keyed, labels};
pub use memory::MemoryIdempotencyStore;
pub use record::{
    Claim, Claimed, Held, HolderToken, IdempotencyRecord, STATUS_COMPLETED, STATUS_IN_PROGRESS,
    Status,
};
pub use store::{IdempotencyError, IdempotencyStore};
