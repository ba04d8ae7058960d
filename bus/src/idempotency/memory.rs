//! The in-memory idempotency store, for the embedded transport and tests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::record::{Claim, Claimed, Held, IdempotencyRecord, Status};
use super::store::{IdempotencyError, IdempotencyStore};

/// Claims between two sweeps of expired records.
const SWEEP_EVERY: u64 = 1024;

/// Idempotency records in a map, with the same rules as every store; expired records are
/// treated as absent and swept now and then, as a table's TTL would delete them.
#[derive(Debug, Default)]
pub struct MemoryIdempotencyStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, IdempotencyRecord>,
    claims: u64,
}

impl MemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record stored under `key`, expired or not.
    pub fn get(&self, key: &str) -> Option<IdempotencyRecord> {
        self.lock().records.get(key).cloned()
    }

    /// How many records are stored, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave a record half-written: each change is one insert.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, IdempotencyError> {
        let mut inner = self.lock();
        inner.claims += 1;
        if inner.claims.is_multiple_of(SWEEP_EVERY) {
            let now = claim.now_secs();
            inner.records.retain(|_, r| r.expiration >= now);
        }
        let answer = claim.against(inner.records.get(&claim.key));
        if answer == Claimed::Acquired {
            inner.records.insert(claim.key.clone(), claim.record());
        }
        Ok(answer)
    }

    async fn complete(
        &self,
        held: &Held,
        data: Option<&str>,
        expiration: u64,
    ) -> Result<(), IdempotencyError> {
        let mut inner = self.lock();
        match inner.records.get_mut(&held.key) {
            Some(r) if r.holder == held.holder => {
                r.status = Status::Completed;
                r.data = data.map(str::to_owned);
                r.expiration = expiration;
                Ok(())
            }
            _ => Err(IdempotencyError::NotHeld {
                key: held.key.clone(),
            }),
        }
    }

    async fn release(&self, held: &Held) -> Result<(), IdempotencyError> {
        let mut inner = self.lock();
        match inner.records.get(&held.key) {
            None => Ok(()),
            Some(r) if r.holder == held.holder && r.status == Status::InProgress => {
                inner.records.remove(&held.key);
                Ok(())
            }
            Some(_) => Err(IdempotencyError::NotHeld {
                key: held.key.clone(),
            }),
        }
    }
}
