//! The orders store on moto behind the AWS error proxy: DynamoDB's own errors, in the shapes
//! DynamoDB sends, end as the outcomes the orders worker is built on. A transaction cancelled
//! for a `TransactionConflict` is a version conflict (the handler loads the order again and
//! decides again); a throughput error is the store being unavailable (a transient failure,
//! retried); neither writes anything.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::orders::{env, placed};
use fleet_bus::consumer::{FailureKind, HandlerError};
use fleet_bus::scenarios::unique_name;
use fleet_tests::faults::aws::{AwsError, AwsErrorProxy};
use fleet_tests::faults::{sdk_config_without_retries, seed};
use fleet_tests::moto;
use fleet_workers::orders::{DynamoOrderStore, OrderError, OrderRecord, OrderStore, StoreError};

/// The store on a fresh table, directly and through the proxy.
async fn stores(proxy: &AwsErrorProxy) -> (DynamoOrderStore, DynamoOrderStore) {
    let table = unique_name("orders");
    let client = fleet_tests::dynamo::single_table(&moto::sdk_config().await, &table).await;
    let faulty = aws_sdk_dynamodb::Client::new(
        &sdk_config_without_retries(proxy.endpoint(), Duration::from_secs(5)).await,
    );
    (
        DynamoOrderStore::new(client, table.clone()),
        DynamoOrderStore::new(faulty, table),
    )
}

fn first_version() -> (OrderRecord, Vec<fleet_workers::orders::OutboxRow>) {
    common::orders::next(None, &env("e-1", 0, placed("o-1", "c-1", 500, true)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_is_a_version_conflict_and_writes_nothing() {
    let proxy = AwsErrorProxy::start(&moto::moto().endpoint, seed())
        .await
        .unwrap();
    let (direct, faulty) = stores(&proxy).await;
    proxy.inject("TransactWriteItems", 1.0, AwsError::TransactionConflict);
    let (record, rows) = first_version();
    let e = faulty.apply(&record, &rows).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { order_id, expected: 0 } if order_id == "o-1"),
        "{e:?}"
    );
    assert_eq!(proxy.injected("TransactWriteItems"), 1);
    assert_eq!(direct.load("o-1").await.unwrap(), None);

    proxy.clear();
    faulty.apply(&record, &rows).await.unwrap();
    assert_eq!(direct.load("o-1").await.unwrap().unwrap().record, record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_and_failing_reads_are_transient_store_failures() {
    let proxy = AwsErrorProxy::start(&moto::moto().endpoint, seed())
        .await
        .unwrap();
    let (direct, faulty) = stores(&proxy).await;
    let (record, rows) = first_version();
    for error in [
        AwsError::ProvisionedThroughputExceeded,
        AwsError::Throttling,
        AwsError::InternalError,
    ] {
        proxy.inject("TransactWriteItems", 1.0, error);
        let e = faulty.apply(&record, &rows).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Unavailable { .. }),
            "{error:?}: {e:?}"
        );
        let handler: HandlerError = OrderError::Store(e).into();
        assert_eq!(handler.kind(), FailureKind::Transient, "{error:?}");
        assert_eq!(handler.label(), "store_unavailable");
    }
    assert_eq!(direct.load("o-1").await.unwrap(), None);

    proxy.clear();
    faulty.apply(&record, &rows).await.unwrap();
    proxy.inject("GetItem", 1.0, AwsError::ProvisionedThroughputExceeded);
    proxy.inject("Query", 1.0, AwsError::ProvisionedThroughputExceeded);
    let e = faulty.load("o-1").await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    assert_eq!(direct.load("o-1").await.unwrap().unwrap().record, record);
}
