//! The AWS error proxy in front of moto answers chosen operations with real AWS errors, and the
//! SDK clients Fleet builds parse each one into the error the engine classifies: throttling
//! (`fleet_bus::is_throttling_code`) and server errors retryable, DynamoDB's cancellation
//! reasons readable. The SDK's own retries are off, so each call shows the injected error.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use fleet_bus::aws::SqsTransport;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{
    BusError, Declaration, OutgoingMessage, QueueDecl, ReceiveRequest, TopicDecl, Transport,
    is_throttling_code,
};
use fleet_tests::faults::aws::{AwsError, AwsErrorProxy};
use fleet_tests::faults::{sdk_config_without_retries, seed};
use fleet_tests::moto;

const ATTEMPT: Duration = Duration::from_secs(5);

async fn proxy() -> AwsErrorProxy {
    AwsErrorProxy::start(&moto::moto().endpoint, seed())
        .await
        .unwrap()
}

/// A queue made on moto directly, and a transport that reaches it through the proxy.
async fn queue_behind(proxy: &AwsErrorProxy) -> (SqsTransport, String) {
    let name = unique_name("faults");
    moto::transport()
        .await
        .declare(&Declaration::Queue(&QueueDecl::new(&name)))
        .await
        .unwrap();
    let config = sdk_config_without_retries(proxy.endpoint(), ATTEMPT).await;
    (SqsTransport::new(&config), name)
}

async fn receive(t: &SqsTransport, queue: &str) -> Result<usize, BusError> {
    let q = t.queue(queue).await.unwrap();
    let request = ReceiveRequest::new(10, Duration::ZERO);
    q.queue().receive(&request).await.map(|m| m.len())
}

fn assert_throttled(e: &BusError, code: &str) {
    assert_eq!(e.code(), Some(code), "{e:?}");
    assert!(is_throttling_code(code), "{code}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.error_type(), "throttled", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_receive_throttling_is_a_retryable_throttle() {
    let proxy = proxy().await;
    let (t, queue) = queue_behind(&proxy).await;
    proxy.inject("ReceiveMessage", 1.0, AwsError::Throttling);
    let e = receive(&t, &queue).await.unwrap_err();
    assert_throttled(&e, "ThrottlingException");
    assert!(e.to_string().contains("ReceiveMessage"), "{e}");
    assert_eq!(proxy.injected("ReceiveMessage"), 1);

    proxy.clear();
    assert_eq!(receive(&t, &queue).await.unwrap(), 0);
    assert_eq!(proxy.calls("ReceiveMessage"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_send_request_throttled_is_a_retryable_throttle() {
    let proxy = proxy().await;
    let (t, queue) = queue_behind(&proxy).await;
    proxy.inject("SendMessage", 1.0, AwsError::RequestThrottled);
    proxy.inject("SendMessageBatch", 1.0, AwsError::RequestThrottled);
    let sender = t.queue(&queue).await.unwrap().sender();
    let e = sender.send(OutgoingMessage::new("x")).await.unwrap_err();
    assert_throttled(&e, "RequestThrottled");
    // Nothing reached the queue.
    proxy.clear();
    assert_eq!(receive(&t, &queue).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_server_errors_are_retryable_service_errors() {
    let proxy = proxy().await;
    let (t, queue) = queue_behind(&proxy).await;
    proxy.inject("ReceiveMessage", 1.0, AwsError::InternalError);
    let e = receive(&t, &queue).await.unwrap_err();
    assert_eq!(e.code(), Some("InternalError"), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.error_type(), "service");

    proxy.inject("ReceiveMessage", 1.0, AwsError::BareServerError);
    let e = receive(&t, &queue).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.error_type(), "service", "{e:?}");
    assert_eq!(proxy.injected("ReceiveMessage"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fraction_of_calls_fails_and_the_seed_repeats_which() {
    let run = |seed: u64| async move {
        let proxy = AwsErrorProxy::start(&moto::moto().endpoint, seed)
            .await
            .unwrap();
        let (t, queue) = queue_behind(&proxy).await;
        proxy.inject("ReceiveMessage", 0.3, AwsError::Throttling);
        let mut failed = Vec::new();
        for _ in 0..40 {
            failed.push(receive(&t, &queue).await.is_err());
        }
        assert_eq!(
            proxy.injected("ReceiveMessage"),
            failed.iter().filter(|f| **f).count() as u64
        );
        failed
    };
    let seed = seed();
    let first = run(seed).await;
    let hits = first.iter().filter(|f| **f).count();
    assert!((3..=22).contains(&hits), "30 % of 40, seed {seed}: {hits}");
    assert_eq!(run(seed).await, first, "seed {seed} repeats the same calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_publish_throttling_is_a_retryable_throttle() {
    let proxy = proxy().await;
    let name = unique_name("faults");
    moto::transport()
        .await
        .declare(&Declaration::Topic(&TopicDecl::new(&name)))
        .await
        .unwrap();
    let t = SqsTransport::new(&sdk_config_without_retries(proxy.endpoint(), ATTEMPT).await);
    let topic = t.topic(&name).await.unwrap();
    proxy.inject("Publish", 1.0, AwsError::Throttling);
    proxy.inject("PublishBatch", 1.0, AwsError::Throttling);
    let e = topic.publish(OutgoingMessage::new("x")).await.unwrap_err();
    assert_throttled(&e, "Throttling");
    assert_eq!(
        proxy.injected("Publish") + proxy.injected("PublishBatch"),
        1
    );

    proxy.inject("Publish", 1.0, AwsError::InternalError);
    proxy.inject("PublishBatch", 1.0, AwsError::InternalError);
    let e = topic.publish(OutgoingMessage::new("x")).await.unwrap_err();
    assert_eq!(e.code(), Some("InternalError"), "{e:?}");
    assert!(e.is_retryable(), "{e}");
}

/// The workers' table on moto, and a client that reaches it through the proxy.
async fn table_behind(proxy: &AwsErrorProxy) -> (aws_sdk_dynamodb::Client, String) {
    let name = unique_name("faults");
    fleet_tests::dynamo::single_table(&moto::sdk_config().await, &name).await;
    let config = sdk_config_without_retries(proxy.endpoint(), ATTEMPT).await;
    (aws_sdk_dynamodb::Client::new(&config), name)
}

fn put(table: &str, pk: &str) -> Put {
    Put::builder()
        .table_name(table)
        .item("PK", AttributeValue::S(pk.to_owned()))
        .item("SK", AttributeValue::S("ITEM".to_owned()))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throughput_exceeded_is_its_own_error_and_the_sdk_retries_it() {
    let proxy = proxy().await;
    let (client, table) = table_behind(&proxy).await;
    proxy.inject("PutItem", 1.0, AwsError::ProvisionedThroughputExceeded);
    let p = put(&table, "A");
    let err = client
        .put_item()
        .table_name(&table)
        .set_item(Some(p.item().clone()))
        .send()
        .await
        .unwrap_err();
    let service = err.as_service_error().unwrap();
    assert!(
        matches!(
            service,
            PutItemError::ProvisionedThroughputExceededException(_)
        ),
        "{service:?}"
    );
    let e = fleet_bus::aws::api_error(&table, "PutItem", err);
    assert_eq!(
        e.code(),
        Some("ProvisionedThroughputExceededException"),
        "{e:?}"
    );

    // The bus's own list leaves DynamoDB's code to the workers (`aws_calls::error_type`); the
    // SDK's standard retry strategy treats it as a throttle: all three attempts reach the proxy.
    let before = proxy.injected("PutItem");
    let retrying = aws_sdk_dynamodb::Client::new(&moto::sdk_config_at(proxy.endpoint()).await);
    retrying
        .put_item()
        .table_name(&table)
        .set_item(Some(p.item().clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(proxy.injected("PutItem") - before, 3);

    // Nothing was written.
    proxy.clear();
    let got = client
        .get_item()
        .table_name(&table)
        .key("PK", AttributeValue::S("A".into()))
        .key("SK", AttributeValue::S("ITEM".into()))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_transaction_conflict_names_the_conflicting_action() {
    let proxy = proxy().await;
    let (client, table) = table_behind(&proxy).await;
    proxy.inject("TransactWriteItems", 1.0, AwsError::TransactionConflict);
    let items: Vec<TransactWriteItem> = ["A", "B", "C"]
        .iter()
        .map(|pk| TransactWriteItem::builder().put(put(&table, pk)).build())
        .collect();
    let err = client
        .transact_write_items()
        .set_transact_items(Some(items.clone()))
        .send()
        .await
        .unwrap_err();
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        panic!("{err:?}");
    };
    let codes: Vec<_> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["TransactionConflict", "None", "None"]);

    proxy.clear();
    client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.calls("TransactWriteItems"), 2);
}
