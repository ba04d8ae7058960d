//! The idempotency store conformance suite: every [`IdempotencyStore`] passes it, the in-memory
//! one and the DynamoDB one alike. Each scenario takes a store and uses its own unique keys, so
//! all may share one store (one table) and run in parallel.
//!
//! ```text
//! async fn memory() -> Arc<dyn IdempotencyStore> { Arc::new(MemoryIdempotencyStore::new()) }
//! fleet_bus::idempotency_tests!(#[tokio::test], memory);
//! ```

mod layer;
mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use layer::*;
pub use store::*;

use super::unique_name;
use crate::consumer::{Delivery, HandlerError, LeaseView};
use crate::idempotency::{
    Claim, Clock, HolderToken, IdempotencyLayer, IdempotencyStore, Keyed, payload_hash,
};
use crate::message::{Message, Receipt, SystemAttributes};

/// A fresh key no other scenario uses.
pub fn unique_key(base: &str) -> String {
    unique_name(base)
}

/// The system time now, epoch milliseconds: scenarios move time by passing later `now_ms`.
pub fn now_ms() -> u64 {
    Clock::system().now_ms()
}

/// A claim of `key` for `payload` by a new holder at `now_ms`, its lease `lease_ms` long and
/// its record expiring an hour later.
pub fn claim_at(key: &str, payload: &serde_json::Value, now_ms: u64, lease_ms: u64) -> Claim {
    Claim {
        key: key.to_owned(),
        validation: payload_hash(payload),
        holder: HolderToken::new(),
        now_ms,
        in_progress_until_ms: now_ms + lease_ms,
        expiration: now_ms / 1000 + 3600,
        takeover: true,
    }
}

/// The same holder's claim at a later time: a renewal.
pub fn later(claim: &Claim, now_ms: u64, lease_ms: u64) -> Claim {
    Claim {
        now_ms,
        in_progress_until_ms: now_ms + lease_ms,
        expiration: now_ms / 1000 + 3600,
        ..claim.clone()
    }
}

/// A delivery of `body` whose lease runs out after `lease`, as the engine would hand it over.
pub fn delivery(body: &str, lease: Duration) -> Delivery {
    Delivery {
        message: Arc::new(Message {
            id: unique_name("message"),
            body: body.to_owned(),
            attributes: Default::default(),
            system: SystemAttributes {
                receive_count: 1,
                sent_at: SystemTime::now(),
                first_received_at: Some(SystemTime::now()),
                message_group_id: None,
                deduplication_id: None,
                sequence_number: None,
                trace_header: None,
            },
            receipt: Receipt::new(unique_name("receipt")),
        }),
        attempt: 1,
        max_attempts: 5,
        queue: Arc::from("idempotency-scenarios"),
        cancel: CancellationToken::new(),
        lease: LeaseView::fixed(Instant::now() + lease),
    }
}

/// The scenarios' key function: the body is JSON, its `id` the key, the whole body the payload.
pub fn body_key(d: &Delivery) -> Result<Keyed, HandlerError> {
    let payload: serde_json::Value =
        serde_json::from_str(&d.message.body).map_err(HandlerError::permanent)?;
    let key = payload["id"].as_str().unwrap_or_default().to_owned();
    Ok(Keyed { key, payload })
}

/// A layer over `store` keyed by [`body_key`].
pub fn layer(store: Arc<dyn IdempotencyStore>) -> IdempotencyLayer {
    IdempotencyLayer::new(store, unique_name("scope"), body_key)
}

/// Every scenario of the conformance suite, from the list
/// [`idempotency_tests!`](crate::idempotency_tests) stamps tests out of, so a new scenario is in
/// both.
pub fn all() -> Vec<super::Case<Arc<dyn IdempotencyStore>>> {
    crate::idempotency_tests!(@names (@cases))
}

/// Stamps out one test per scenario of the conformance suite for a store. The first argument is
/// the test attribute (`#[tokio::test]`); the second an async function returning the
/// `Arc<dyn IdempotencyStore>` under test. [`all`] lists the same scenarios.
#[macro_export]
macro_rules! idempotency_tests {
    (#[$attr:meta], $setup:path) => {
        $crate::idempotency_tests!(@names (@each #[$attr], $setup,));
    };
    // The one list of scenarios: passes every name on to the arm `$arm`.
    (@names ($($arm:tt)*)) => {
        $crate::idempotency_tests! { $($arm)*
            first_claim_acquires,
            a_second_claim_sees_in_progress,
            completion_then_claim_is_a_hit_with_its_data,
            a_stale_holder_cannot_complete_release_or_renew,
            an_expired_lease_can_be_taken_over,
            a_claim_without_takeover_never_takes_a_stale_record,
            a_released_record_is_claimed_at_once,
            a_different_payload_is_key_reused_on_every_path,
            an_expired_record_is_claimed_again,
            renewal_moves_the_in_progress_expiration,
            fifty_concurrent_claims_one_acquires,
            fifty_concurrent_deliveries_run_the_handler_once,
            the_layer_settles_each_outcome,
        }
    };
    (@each #[$attr:meta], $setup:path, $($name:ident),+ $(,)?) => {
        $(
            #[$attr]
            async fn $name() {
                let store = $setup().await;
                $crate::scenarios::idempotency::$name(store).await;
            }
        )+
    };
    (@cases $($name:ident),+ $(,)?) => {
        vec![$(
            $crate::scenarios::Case {
                name: stringify!($name),
                run: |store| Box::pin($crate::scenarios::idempotency::$name(store)),
            }
        ),+]
    };
}
