//! Scenarios of the store calls alone.

use std::sync::Arc;

use serde_json::json;

use super::{claim_at, later, now_ms, unique_key};
use crate::idempotency::{Claim, Claimed, IdempotencyError, IdempotencyStore};

type Store = Arc<dyn IdempotencyStore>;

const LEASE_MS: u64 = 30_000;

fn not_held(r: Result<(), IdempotencyError>, what: &str) {
    assert!(
        matches!(r, Err(IdempotencyError::NotHeld { .. })),
        "{what}: {r:?}"
    );
}

pub async fn first_claim_acquires(store: Store) {
    let key = unique_key("first");
    let c = claim_at(&key, &json!({"n": 1}), now_ms(), LEASE_MS);
    assert_eq!(store.claim(&c).await.unwrap(), Claimed::Acquired);
    // Claiming again by the same holder renews, and is acquired again.
    assert_eq!(store.claim(&c).await.unwrap(), Claimed::Acquired);
}

pub async fn a_second_claim_sees_in_progress(store: Store) {
    let (key, payload, t) = (unique_key("second"), json!({"n": 2}), now_ms());
    let first = claim_at(&key, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    let second = claim_at(&key, &payload, t + 1_000, LEASE_MS);
    assert_eq!(
        store.claim(&second).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + LEASE_MS
        }
    );
    // Exactly at the lease's end it is still held (`in_progress_expiration < now` frees it).
    let at_end = claim_at(&key, &payload, t + LEASE_MS, LEASE_MS);
    assert!(matches!(
        store.claim(&at_end).await.unwrap(),
        Claimed::InProgress { .. }
    ));
}

pub async fn completion_then_claim_is_a_hit_with_its_data(store: Store) {
    let (key, payload, t) = (unique_key("hit"), json!({"n": 3}), now_ms());
    let c = claim_at(&key, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&c).await.unwrap(), Claimed::Acquired);
    let expiration = t / 1000 + 600;
    store
        .complete(&c.held(), Some(r#"{"total":42}"#), expiration)
        .await
        .unwrap();
    // Completing again by the holder (an SDK retry after a lost answer) changes nothing.
    store
        .complete(&c.held(), Some(r#"{"total":42}"#), expiration)
        .await
        .unwrap();
    // A hit even long after the lease, until the record expires.
    let dup = claim_at(&key, &payload, t + 10 * LEASE_MS, LEASE_MS);
    let hit = Claimed::Completed {
        data: Some(r#"{"total":42}"#.to_owned()),
    };
    assert_eq!(store.claim(&dup).await.unwrap(), hit);
    // Without data.
    let key2 = unique_key("hit-no-data");
    let c2 = claim_at(&key2, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&c2).await.unwrap(), Claimed::Acquired);
    store.complete(&c2.held(), None, expiration).await.unwrap();
    let dup2 = claim_at(&key2, &payload, t + 1, LEASE_MS);
    assert_eq!(
        store.claim(&dup2).await.unwrap(),
        Claimed::Completed { data: None }
    );
}

pub async fn a_stale_holder_cannot_complete_release_or_renew(store: Store) {
    let (key, payload, t) = (unique_key("stale"), json!({"n": 4}), now_ms());
    let stale = claim_at(&key, &payload, t, 1_000);
    assert_eq!(store.claim(&stale).await.unwrap(), Claimed::Acquired);
    let taker = claim_at(&key, &payload, t + 2_000, LEASE_MS);
    assert_eq!(store.claim(&taker).await.unwrap(), Claimed::Acquired);
    not_held(
        store
            .complete(&stale.held(), Some("stale"), t / 1000 + 600)
            .await,
        "a stale holder completes",
    );
    not_held(
        store.release(&stale.held()).await,
        "a stale holder releases",
    );
    let renewal = later(&stale, t + 3_000, LEASE_MS);
    assert_eq!(
        store.claim(&renewal).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + 2_000 + LEASE_MS
        },
        "a stale holder renews"
    );
    // The new holder's record is intact and completes.
    store
        .complete(&taker.held(), None, t / 1000 + 600)
        .await
        .unwrap();
    not_held(
        store.release(&stale.held()).await,
        "released after completion",
    );
    not_held(
        store.release(&taker.held()).await,
        "a completed record is never released",
    );
    let after = claim_at(&key, &payload, t + 4_000, LEASE_MS);
    assert_eq!(
        store.claim(&after).await.unwrap(),
        Claimed::Completed { data: None }
    );
}

pub async fn an_expired_lease_can_be_taken_over(store: Store) {
    let (key, payload, t) = (unique_key("expired-lease"), json!({"n": 5}), now_ms());
    let first = claim_at(&key, &payload, t, 1_000);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    let early = claim_at(&key, &payload, t + 1_000, LEASE_MS);
    assert!(matches!(
        store.claim(&early).await.unwrap(),
        Claimed::InProgress { .. }
    ));
    let late = claim_at(&key, &payload, t + 1_001, LEASE_MS);
    assert_eq!(store.claim(&late).await.unwrap(), Claimed::Acquired);
    let third = claim_at(&key, &payload, t + 2_000, LEASE_MS);
    assert_eq!(
        store.claim(&third).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + 1_001 + LEASE_MS
        }
    );
}

/// A claim that must not take over (an email possibly handed to its provider) finds a stale
/// record in progress, with its past `until_ms`; its own holder still renews it.
pub async fn a_claim_without_takeover_never_takes_a_stale_record(store: Store) {
    let (key, payload, t) = (unique_key("no-takeover"), json!({"n": 55}), now_ms());
    let first = claim_at(&key, &payload, t, 1_000);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    let late = Claim {
        takeover: false,
        ..claim_at(&key, &payload, t + 5_000, LEASE_MS)
    };
    assert_eq!(
        store.claim(&late).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + 1_000
        }
    );
    let renewal = Claim {
        takeover: false,
        ..later(&first, t + 5_000, LEASE_MS)
    };
    assert_eq!(store.claim(&renewal).await.unwrap(), Claimed::Acquired);
    store
        .complete(&first.held(), Some("sent"), t / 1000 + 3600)
        .await
        .unwrap();
    assert_eq!(
        store.claim(&late).await.unwrap(),
        Claimed::Completed {
            data: Some("sent".into())
        }
    );
}

pub async fn a_released_record_is_claimed_at_once(store: Store) {
    let (key, payload, t) = (unique_key("released"), json!({"n": 6}), now_ms());
    let first = claim_at(&key, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    store.release(&first.held()).await.unwrap();
    // Releasing what is gone succeeds (an SDK retry after a lost answer).
    store.release(&first.held()).await.unwrap();
    not_held(
        store.complete(&first.held(), None, t / 1000 + 600).await,
        "completing a released record",
    );
    let next = claim_at(&key, &payload, t + 1, LEASE_MS);
    assert_eq!(store.claim(&next).await.unwrap(), Claimed::Acquired);
    // Even a different payload may take a released key.
    let key2 = unique_key("released-other");
    let c = claim_at(&key2, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&c).await.unwrap(), Claimed::Acquired);
    store.release(&c.held()).await.unwrap();
    let other = claim_at(&key2, &json!({"n": "other"}), t + 1, LEASE_MS);
    assert_eq!(store.claim(&other).await.unwrap(), Claimed::Acquired);
}

pub async fn a_different_payload_is_key_reused_on_every_path(store: Store) {
    let (key, payload, t) = (unique_key("reused"), json!({"n": 7}), now_ms());
    let other = json!({"n": 8});
    let first = claim_at(&key, &payload, t, 1_000);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    let during = claim_at(&key, &other, t + 500, LEASE_MS);
    assert_eq!(
        store.claim(&during).await.unwrap(),
        Claimed::KeyReused,
        "in progress"
    );
    let lapsed = claim_at(&key, &other, t + 5_000, LEASE_MS);
    assert_eq!(
        store.claim(&lapsed).await.unwrap(),
        Claimed::KeyReused,
        "in progress, its lease ended"
    );
    store
        .complete(&first.held(), Some("done"), t / 1000 + 600)
        .await
        .unwrap();
    let after = claim_at(&key, &other, t + 6_000, LEASE_MS);
    assert_eq!(
        store.claim(&after).await.unwrap(),
        Claimed::KeyReused,
        "completed"
    );
    // Key order and whitespace are not a different payload.
    let same: serde_json::Value = serde_json::from_str("{ \"n\" : 7 }").unwrap();
    let again = claim_at(&key, &same, t + 7_000, LEASE_MS);
    assert_eq!(
        store.claim(&again).await.unwrap(),
        Claimed::Completed {
            data: Some("done".into())
        }
    );
    // Once the record has expired the key is free for any payload.
    let expired = claim_at(&key, &other, (t / 1000 + 601) * 1000, LEASE_MS);
    assert_eq!(store.claim(&expired).await.unwrap(), Claimed::Acquired);
}

pub async fn an_expired_record_is_claimed_again(store: Store) {
    let (key, payload, t) = (unique_key("expired"), json!({"n": 9}), now_ms());
    let first = claim_at(&key, &payload, t, LEASE_MS);
    assert_eq!(store.claim(&first).await.unwrap(), Claimed::Acquired);
    let expiration = t / 1000 + 60;
    store
        .complete(&first.held(), None, expiration)
        .await
        .unwrap();
    let at = claim_at(&key, &payload, expiration * 1000 + 999, LEASE_MS);
    assert_eq!(
        store.claim(&at).await.unwrap(),
        Claimed::Completed { data: None },
        "within its last second"
    );
    let past = claim_at(&key, &payload, (expiration + 1) * 1000, LEASE_MS);
    assert_eq!(store.claim(&past).await.unwrap(), Claimed::Acquired);
}

pub async fn renewal_moves_the_in_progress_expiration(store: Store) {
    let (key, payload, t) = (unique_key("renewal"), json!({"n": 10}), now_ms());
    let holder = claim_at(&key, &payload, t, 10_000);
    assert_eq!(store.claim(&holder).await.unwrap(), Claimed::Acquired);
    let renewed = later(&holder, t + 5_000, 35_000);
    assert_eq!(store.claim(&renewed).await.unwrap(), Claimed::Acquired);
    // Past the first lease the record is still held, until the renewed one ends.
    let other = claim_at(&key, &payload, t + 20_000, LEASE_MS);
    assert_eq!(
        store.claim(&other).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + 40_000
        }
    );
    // A holder whose lease ended, with nobody taking over, may still renew.
    let late = later(&holder, t + 45_000, 30_000);
    assert_eq!(store.claim(&late).await.unwrap(), Claimed::Acquired);
    let other = claim_at(&key, &payload, t + 50_000, LEASE_MS);
    assert_eq!(
        store.claim(&other).await.unwrap(),
        Claimed::InProgress {
            until_ms: t + 75_000
        }
    );
    store
        .complete(&holder.held(), None, t / 1000 + 600)
        .await
        .unwrap();
}

pub async fn fifty_concurrent_claims_one_acquires(store: Store) {
    let (key, payload, t) = (unique_key("fifty"), json!({"n": 11}), now_ms());
    let claims: Vec<_> = (0..50)
        .map(|i| claim_at(&key, &payload, t + i, LEASE_MS))
        .collect();
    let answers = futures::future::join_all(claims.iter().map(|c| store.claim(c))).await;
    let answers: Vec<Claimed> = answers.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..50)
        .filter(|&i| answers[i] == Claimed::Acquired)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    let until_ms = claims[winners[0]].in_progress_until_ms;
    for (i, a) in answers.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(*a, Claimed::InProgress { until_ms }, "claim {i}");
        }
    }
}
