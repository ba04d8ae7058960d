//! SDK errors become bus errors with the resource, the operation and the AWS code, classified
//! as retryable or not.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use fleet_bus::aws::SqsTransport;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{BusError, Declaration, QueueDecl, Receipt, Transport, VisibilityChange};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_context_and_a_retry_classification() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("errors");
    t.declare(&Declaration::Queue(&QueueDecl::new(&name)))
        .await
        .unwrap();
    let q = t.queue(&name).await.unwrap();

    let missing = t.queue("no-such-queue").await.unwrap_err();
    assert!(
        matches!(missing, BusError::NotFound { kind: "queue", .. }),
        "{missing:?}"
    );

    let too_long = VisibilityChange {
        receipt: Receipt::new("x"),
        timeout: Duration::from_secs(1),
    };
    let per_entry = q
        .queue()
        .change_visibility_batch(&[too_long])
        .await
        .unwrap();
    assert_eq!(
        per_entry[0].as_ref().unwrap_err().code,
        "ReceiptHandleIsInvalid"
    );

    // A request SQS refuses as a whole (moto: duplicate receipts in one batch), with the old
    // query-protocol code `AWS.SimpleQueueService.BatchEntryIdsNotDistinct` shortened.
    let twice = [Receipt::new("same"), Receipt::new("same")];
    let err = q.queue().delete_batch(&twice).await.unwrap_err();
    assert_eq!(err.code(), Some("BatchEntryIdsNotDistinct"), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("DeleteMessageBatch") && text.contains(&name),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_retryable_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let t = SqsTransport::new(&config);
    let err = t.queue("anything").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.code(), Some("NetworkError"), "{err}");
    assert!(err.to_string().contains("GetQueueUrl on anything"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_or_publish_names_its_queue_or_topic() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("refusing");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let err = t
        .queue(&queue)
        .await
        .unwrap()
        .sender()
        .send(fleet_bus::OutgoingMessage::new("later").delay(Duration::from_secs(901)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("SendMessage on {queue} failed")),
        "{err}"
    );

    let topic = unique_name("refusing");
    t.declare(&Declaration::Topic(&fleet_bus::TopicDecl::new(&topic)))
        .await
        .unwrap();
    let err = t
        .topic(&topic)
        .await
        .unwrap()
        .publish(fleet_bus::OutgoingMessage::new("later").delay(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("Publish on {topic} failed")),
        "{err}"
    );
}

/// Every call has an attempt timeout (`fleet_bus::aws::ATTEMPT_TIMEOUT`, 10 s), but a long poll
/// gets its wait on top: a 12 s poll of an empty queue returns empty after its wait, not cut
/// (without the receive's own override it fails with `RequestTimeout` at 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlasts_the_attempt_timeout() {
    let wait = fleet_bus::aws::ATTEMPT_TIMEOUT + Duration::from_secs(2);
    // With fleet's own timeouts (the tests' default client waits longer to connect, and sets no
    // attempt timeout).
    let sdk = fleet_tests::moto::sdk_config_at(&fleet_tests::moto::moto().endpoint).await;
    assert_eq!(
        sdk.timeout_config()
            .and_then(|t| t.operation_attempt_timeout()),
        Some(fleet_bus::aws::ATTEMPT_TIMEOUT)
    );
    let t = SqsTransport::new(&sdk);
    let name = unique_name("long-poll");
    t.declare(&Declaration::Queue(&QueueDecl::new(&name)))
        .await
        .unwrap();
    let q = t.queue(&name).await.unwrap();
    let started = std::time::Instant::now();
    let got = q
        .queue()
        .receive(&fleet_bus::ReceiveRequest {
            max_messages: 10,
            wait_time: wait,
            visibility_timeout: None,
        })
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(
        started.elapsed() >= wait - Duration::from_millis(500),
        "returned after {:?}",
        started.elapsed()
    );
}
