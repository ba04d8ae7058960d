//! Stress reruns of the store conformance suites: every case `FLEET_STRESS` times at once
//! (default 2), each run on a fresh store (a fresh table on moto), for the in-memory and the
//! DynamoDB implementation of each store. `FLEET_STRESS=20 cargo test -p fleet-workers --test
//! stores_stress` for a longer hunt.

mod analytics_conformance;
mod analytics_support;
mod common;
mod orders_conformance;

use std::sync::Arc;

use fleet_bus::idempotency::{IdempotencyStore, MemoryIdempotencyStore};
use fleet_bus::scenarios::idempotency;
use fleet_tests::stress::stress;
use fleet_workers::aws_calls::AwsCalls;
use fleet_workers::idempotency::KeyMode;

use common::idempotency::dynamo_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_memory() {
    stress("idempotency memory", idempotency::all(), || async {
        Arc::new(MemoryIdempotencyStore::new()) as Arc<dyn IdempotencyStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_dynamo() {
    for mode in [KeyMode::Standalone, KeyMode::SingleTable] {
        let suite = format!("idempotency dynamo {mode:?}");
        stress(&suite, idempotency::all(), move || async move {
            Arc::new(dynamo_store(mode, &AwsCalls::new()).await) as Arc<dyn IdempotencyStore>
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_memory() {
    stress(
        "orders memory",
        orders_conformance::cases(),
        orders_conformance::memory,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_dynamo() {
    stress(
        "orders dynamo",
        orders_conformance::cases(),
        orders_conformance::dynamo,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_memory() {
    stress(
        "analytics memory",
        analytics_conformance::cases(),
        analytics_conformance::memory,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_dynamo() {
    stress(
        "analytics dynamo",
        analytics_conformance::cases(),
        analytics_conformance::dynamo,
    )
    .await;
}
