//! One delivery through the idempotency layer: claim, run while renewing the claim with the
//! lease, then complete or release; every refusal and store failure logged and counted here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use tokio::time::Instant;
use tower::Service;

use super::hash::payload_hash;
use super::layer::{IdempotencyLayer, Keyed, labels};
use super::record::{Claim, Claimed, Held, HolderToken};
use super::store::{IdempotencyError, IdempotencyStore};
use crate::consumer::{Delivery, HandlerError, LeaseView};
use crate::metrics as names;

impl IdempotencyLayer {
    /// Runs one delivery through the layer.
    pub(super) async fn handle<S>(
        self,
        mut inner: S,
        delivery: Delivery,
    ) -> Result<(), HandlerError>
    where
        S: Service<Delivery, Response = (), Error = HandlerError>,
    {
        let keyed = (self.key_fn)(&delivery)?;
        let mut claim = self.claim_for(&keyed, &delivery);
        if !self.acquire(&claim).await? {
            return Ok(());
        }
        let held = claim.held();
        // Dropped before it is disarmed (the engine cancelled the handler, its timeout passed,
        // it panicked): the record is released, so a redelivery need not wait out the lease.
        let mut guard = ReleaseOnDrop::new(&self, &held);
        let mut lease = delivery.lease.clone();
        let result = self
            .run_renewing(inner.call(delivery), &mut lease, &mut claim)
            .await;
        guard.disarm();
        match result {
            Ok(()) => self.complete(&held).await,
            Err(e) => {
                // The handler's error is what counts; a failed release is logged and counted.
                release(&*self.store, &self.scope, &held).await;
                Err(e)
            }
        }
    }

    fn claim_for(&self, keyed: &Keyed, delivery: &Delivery) -> Claim {
        let now_ms = self.clock.now_ms();
        let in_progress_until_ms = self.clock.epoch_ms_at(delivery.lease.deadline());
        Claim {
            key: format!("{}#{}", self.scope, keyed.key),
            validation: payload_hash(&keyed.payload),
            holder: HolderToken::new(),
            now_ms,
            in_progress_until_ms,
            expiration: self.expiration(now_ms, in_progress_until_ms),
            takeover: true,
        }
    }

    /// A record's expiration in epoch seconds: `expires_after` from now, and never before the
    /// work's lease ends.
    fn expiration(&self, now_ms: u64, in_progress_until_ms: u64) -> u64 {
        let after = (now_ms / 1000).saturating_add(self.expires_after.as_secs());
        after.max(in_progress_until_ms.div_ceil(1000) + 1)
    }

    /// Claims the key: `true` to run the handler, `false` for a hit, or the refusal's error.
    async fn acquire(&self, claim: &Claim) -> Result<bool, HandlerError> {
        let claimed = self.store.claim(claim).await.map_err(|e| {
            self.store_failed("claim", &claim.key, &e);
            HandlerError::transient(e).with_label(labels::STORE_UNAVAILABLE)
        })?;
        let key = claim.key.clone();
        match claimed {
            Claimed::Acquired => Ok(true),
            Claimed::Completed { .. } => {
                tracing::debug!(scope = %self.scope, key, "idempotency hit: the work is done already");
                super::counters::hit(&self.scope);
                Ok(false)
            }
            Claimed::InProgress { until_ms } => {
                super::counters::conflict(&self.scope, "in_progress");
                let wait = retry_wait(until_ms.saturating_sub(claim.now_ms));
                let e = IdempotencyError::InProgress { key, until_ms };
                Err(HandlerError::transient(e)
                    .with_label(labels::IN_PROGRESS)
                    .retry_after(wait))
            }
            Claimed::KeyReused => {
                super::counters::conflict(&self.scope, "key_reused");
                let e = IdempotencyError::KeyReused { key };
                Err(HandlerError::permanent(e).with_label(labels::KEY_REUSED))
            }
        }
    }

    /// Runs the handler, renewing the claim each time the lease's deadline moves.
    async fn run_renewing<F>(&self, work: F, lease: &mut LeaseView, claim: &mut Claim) -> F::Output
    where
        F: Future<Output = Result<(), HandlerError>>,
    {
        tokio::pin!(work);
        let renewals = async {
            while let Some(deadline) = lease.changed().await {
                self.renew(claim, deadline).await;
            }
        };
        tokio::select! {
            r = &mut work => r,
            // The lease moves no more (settled or given up): the handler finishes on its own.
            () = renewals => work.await,
        }
    }

    async fn renew(&self, claim: &mut Claim, deadline: Instant) {
        claim.now_ms = self.clock.now_ms();
        claim.in_progress_until_ms = self.clock.epoch_ms_at(deadline);
        claim.expiration = self.expiration(claim.now_ms, claim.in_progress_until_ms);
        match self.store.claim(claim).await {
            Ok(Claimed::Acquired) => {}
            Ok(other) => {
                tracing::warn!(scope = %self.scope, key = %claim.key, found = ?other,
                    "the idempotency record was taken over while its work still runs");
                super::counters::conflict(&self.scope, "not_held");
            }
            Err(e) => self.store_failed("renew", &claim.key, &e),
        }
    }

    /// Marks the work done. The handler's success stands whatever happens here: retrying the
    /// message would run the work again for certain, where a record left in progress only lets
    /// a later duplicate run it once its lease ends.
    async fn complete(&self, held: &Held) -> Result<(), HandlerError> {
        let expiration = self.expiration(self.clock.now_ms(), 0);
        match self.store.complete(held, None, expiration).await {
            Ok(()) => {}
            Err(IdempotencyError::NotHeld { .. }) => {
                tracing::warn!(scope = %self.scope, key = %held.key,
                    "work done, but another holder took the idempotency record over after this lease ended");
                super::counters::conflict(&self.scope, "not_held");
            }
            Err(e) => self.store_failed("complete", &held.key, &e),
        }
        Ok(())
    }

    fn store_failed(&self, operation: &'static str, key: &str, e: &IdempotencyError) {
        store_failed(&self.scope, operation, key, e);
    }
}

async fn release(store: &dyn IdempotencyStore, scope: &str, held: &Held) {
    match store.release(held).await {
        Ok(()) => {}
        Err(IdempotencyError::NotHeld { .. }) => {
            tracing::warn!(scope, key = %held.key, "the idempotency record to release is held by another holder");
            super::counters::conflict(scope, "not_held");
        }
        Err(e) => store_failed(scope, "release", &held.key, &e),
    }
}

fn store_failed(scope: &str, operation: &'static str, key: &str, e: &IdempotencyError) {
    let error = crate::error::chain_text(e);
    tracing::warn!(
        scope,
        operation,
        key,
        error,
        "idempotency store call failed"
    );
    counter!(names::IDEMPOTENCY_STORE_ERRORS, "worker" => scope.to_owned(), "operation" => operation)
        .increment(1);
}

/// How long to wait for another holder's lease: whole seconds (SQS counts visibility in
/// seconds), at least one.
fn retry_wait(ms: u64) -> Duration {
    Duration::from_secs(ms.div_ceil(1000).max(1))
}

/// Releases a claim whose handler did not finish (its future was dropped), in the background.
struct ReleaseOnDrop {
    armed: Option<(Arc<dyn IdempotencyStore>, Arc<str>, Held)>,
}

impl ReleaseOnDrop {
    fn new(layer: &IdempotencyLayer, held: &Held) -> Self {
        Self {
            armed: Some((layer.store.clone(), layer.scope.clone(), held.clone())),
        }
    }

    fn disarm(&mut self) {
        self.armed = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some((store, scope, held)) = self.armed.take() else {
            return;
        };
        // Without a runtime the record stays until its lease ends, as after a crash.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { release(&*store, &scope, &held).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(retry_wait(0), Duration::from_secs(1));
        assert_eq!(retry_wait(1), Duration::from_secs(1));
        assert_eq!(retry_wait(1001), Duration::from_secs(2));
        assert_eq!(retry_wait(30_000), Duration::from_secs(30));
    }
}
