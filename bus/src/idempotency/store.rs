//! The store trait every idempotency backend implements, and its error.

use async_trait::async_trait;

use super::record::{Claim, Claimed, Held};
use crate::error::BoxError;

/// Why an idempotency store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The record is not held by this holder any more: another claim took it over after its
    /// lease ended, or it is gone.
    #[error("idempotency record {key} is not held by this holder")]
    NotHeld {
        /// The idempotency key.
        key: String,
    },
    /// The store could not answer now (throttling, a 5xx, the network): a later try may succeed.
    #[error("idempotency store unavailable")]
    Unavailable {
        /// The store's error.
        #[source]
        source: BoxError,
    },
    /// The store refused the request (a missing table, a denied permission, a bad request).
    #[error("idempotency store refused the request")]
    Refused {
        /// The store's error.
        #[source]
        source: BoxError,
    },
    /// Another holder runs the work for this key (what the layer's transient error carries).
    #[error("idempotency key {key} is in progress elsewhere until epoch ms {until_ms}")]
    InProgress {
        /// The idempotency key.
        key: String,
        /// When the other holder's lease ends, epoch milliseconds.
        until_ms: u64,
    },
    /// The key was used before with a different payload (what the layer's permanent error
    /// carries).
    #[error("idempotency key {key} was used before with a different payload")]
    KeyReused {
        /// The idempotency key.
        key: String,
    },
    /// A stored record that cannot be read.
    #[error("idempotency record {key} is malformed: {reason}")]
    Malformed {
        /// The idempotency key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl IdempotencyError {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IdempotencyError::Unavailable { .. })
    }
}

/// Where idempotency records live. Every implementation passes the conformance suite
/// (`fleet_bus::scenarios::idempotency`, behind the `scenarios` feature).
///
/// Time comes from the caller (`Claim::now_ms`), so a store never reads a clock of its own and
/// all holders judge expirations by the same rule. Every write is conditional: a claim takes a
/// record only as [`Claim::admits`] allows, and only the holder may complete or release it.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Takes the key for the claim, or says why not (done already, held by another, or taken by
    /// a different payload). Claiming again with the same holder token renews the lease
    /// (`in_progress_until_ms`) of a record the holder still holds.
    ///
    /// # Errors
    /// `Unavailable`, `Refused` or `Malformed` when the store cannot answer.
    async fn claim(&self, claim: &Claim) -> Result<Claimed, IdempotencyError>;

    /// Marks the held record completed with its result, expiring at `expiration` (epoch
    /// seconds). Completing again by the same holder succeeds and changes nothing else.
    ///
    /// # Errors
    /// `NotHeld` when another holder took the record over or it is gone; store errors otherwise.
    async fn complete(
        &self,
        held: &Held,
        data: Option<&str>,
        expiration: u64,
    ) -> Result<(), IdempotencyError>;

    /// Deletes the held in-progress record so the next claim acquires it at once (the work
    /// failed). Releasing a record that is gone succeeds.
    ///
    /// # Errors
    /// `NotHeld` when another holder holds the record, or it is completed; store errors
    /// otherwise.
    async fn release(&self, held: &Held) -> Result<(), IdempotencyError>;
}
