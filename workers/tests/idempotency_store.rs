//! Both idempotency stores pass the conformance suite (DynamoDB on moto, in both key modes), and
//! the DynamoDB store's cost per delivery is counted from the SDK's own calls: a first delivery
//! takes 2 writes, a duplicate 1 failed conditional write and no read.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::consumer::{Delivery, FailureKind, handler_fn};
use fleet_bus::idempotency::{
    Claimed, IdempotencyError, IdempotencyStore, MemoryIdempotencyStore, labels,
};
use fleet_bus::scenarios::idempotency::{claim_at, delivery, layer, now_ms};
use fleet_bus::scenarios::unique_name;
use fleet_tests::moto;
use fleet_workers::aws_calls::AwsCalls;
use fleet_workers::idempotency::{DynamoIdempotencyStore, KeyMode};
use tower::ServiceExt;

use common::idempotency::dynamo_store;

mod memory {
    use super::*;

    async fn store() -> Arc<dyn IdempotencyStore> {
        Arc::new(MemoryIdempotencyStore::new())
    }

    fleet_bus::idempotency_tests!(#[tokio::test], store);
}

mod dynamo_standalone {
    use super::*;

    async fn store() -> Arc<dyn IdempotencyStore> {
        Arc::new(dynamo_store(KeyMode::Standalone, &AwsCalls::new()).await)
    }

    fleet_bus::idempotency_tests!(#[tokio::test], store);
}

mod dynamo_single_table {
    use super::*;

    async fn store() -> Arc<dyn IdempotencyStore> {
        Arc::new(dynamo_store(KeyMode::SingleTable, &AwsCalls::new()).await)
    }

    fleet_bus::idempotency_tests!(#[tokio::test], store);
}

/// DynamoDB write and read calls so far: (writes, failed writes, reads).
fn writes_and_reads(calls: &AwsCalls) -> (u64, u64, u64) {
    let writes = ["PutItem", "UpdateItem", "DeleteItem"];
    let failed = writes
        .iter()
        .map(|op| calls.get("DynamoDB", op).errors)
        .sum();
    let reads = calls.calls_of("DynamoDB", &["GetItem", "Query", "Scan", "BatchGetItem"]);
    (calls.calls_of("DynamoDB", &writes), failed, reads)
}

async fn measure_costs(mode: KeyMode) {
    let calls = AwsCalls::new();
    let store: Arc<dyn IdempotencyStore> = Arc::new(dynamo_store(mode, &calls).await);
    let before = writes_and_reads(&calls);
    let handler = layer(store).wrap(handler_fn(|_d: Delivery| async { Ok(()) }));
    let body = serde_json::json!({"id": unique_name("event"), "total": 42}).to_string();
    let lease = Duration::from_secs(30);
    handler
        .clone()
        .oneshot(delivery(&body, lease))
        .await
        .unwrap();
    let (w, f, r) = writes_and_reads(&calls);
    let first = (w - before.0, f - before.1, r - before.2);
    println!(
        "{mode:?} first delivery: {} writes ({} failed), {} reads",
        first.0, first.1, first.2
    );
    assert_eq!(
        first,
        (2, 0, 0),
        "claim PutItem + complete UpdateItem\n{calls}"
    );
    assert_eq!(calls.get("DynamoDB", "PutItem").calls, 1, "{calls}");
    assert_eq!(calls.get("DynamoDB", "UpdateItem").calls, 1, "{calls}");
    handler.oneshot(delivery(&body, lease)).await.unwrap();
    let (w2, f2, r2) = writes_and_reads(&calls);
    let dup = (w2 - w, f2 - f, r2 - r);
    println!(
        "{mode:?} duplicate: {} writes ({} failed), {} reads",
        dup.0, dup.1, dup.2
    );
    assert_eq!(dup, (1, 1, 0), "one failed conditional PutItem\n{calls}");
    println!("{mode:?} calls:\n{calls}");
}

#[tokio::test]
async fn a_first_delivery_costs_two_writes_and_a_duplicate_one_failed_write() {
    measure_costs(KeyMode::Standalone).await;
    measure_costs(KeyMode::SingleTable).await;
}

#[tokio::test]
async fn fifty_concurrent_deliveries_cost_fifty_claims_and_one_completion() {
    let calls = AwsCalls::new();
    let store: Arc<dyn IdempotencyStore> =
        Arc::new(dynamo_store(KeyMode::SingleTable, &calls).await);
    fleet_bus::scenarios::idempotency::fifty_concurrent_deliveries_run_the_handler_once(store)
        .await;
    let put = calls.get("DynamoDB", "PutItem");
    let update = calls.get("DynamoDB", "UpdateItem");
    println!("50 concurrent deliveries, then 50 duplicates:\n{calls}");
    assert_eq!((put.calls, put.errors), (100, 99), "{calls}");
    assert_eq!((update.calls, update.errors), (1, 0), "{calls}");
    assert_eq!(writes_and_reads(&calls).2, 0, "no reads\n{calls}");
}

#[tokio::test]
async fn store_failures_are_classified_and_retried_by_the_layer() {
    let config = moto::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let missing = DynamoIdempotencyStore::new(client, unique_name("absent"), KeyMode::SingleTable);
    let claim = claim_at("k", &serde_json::json!({}), now_ms(), 30_000);
    let e = missing.claim(&claim).await.unwrap_err();
    assert!(matches!(e, IdempotencyError::Refused { .. }), "{e:?}");
    assert!(!e.is_retryable());
    // Nothing listening: a network failure, which may pass.
    let unreachable = aws_sdk_dynamodb::config::Builder::from(&config)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let down = DynamoIdempotencyStore::new(
        aws_sdk_dynamodb::Client::from_conf(unreachable),
        "fleet",
        KeyMode::SingleTable,
    );
    let e = down.claim(&claim).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    for store in [
        Arc::new(missing) as Arc<dyn IdempotencyStore>,
        Arc::new(down),
    ] {
        let handler = layer(store).wrap(handler_fn(|_d: Delivery| async { Ok(()) }));
        let body = serde_json::json!({"id": "e-1"}).to_string();
        let e = handler
            .oneshot(delivery(&body, Duration::from_secs(30)))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Transient, labels::STORE_UNAVAILABLE)
        );
    }
}

#[tokio::test]
async fn a_powertools_record_is_read_as_it_is_written() {
    let calls = AwsCalls::new();
    let store = dynamo_store(KeyMode::Standalone, &calls).await;
    let key = unique_name("powertools");
    // A completed record as Powertools writes it: no holder, no in-progress expiration.
    let item = std::collections::HashMap::from([
        (
            "id".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(key.clone()),
        ),
        (
            "expiration".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::N((now_ms() / 1000 + 600).to_string()),
        ),
        (
            "status".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S("COMPLETED".into()),
        ),
        (
            "data".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S("\"ok\"".into()),
        ),
        (
            "validation".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(fleet_bus::idempotency::payload_hash(
                &serde_json::json!({"a": 1}),
            )),
        ),
    ]);
    let client = calls.dynamodb_client(&moto::sdk_config().await);
    client
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let claim = claim_at(&key, &serde_json::json!({"a": 1}), now_ms(), 30_000);
    assert_eq!(
        store.claim(&claim).await.unwrap(),
        Claimed::Completed {
            data: Some("\"ok\"".into())
        }
    );
}
