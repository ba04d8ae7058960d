//! The AWS call counter sees every operation of the clients built through it, failures included,
//! against moto; the exported metrics name them as IAM actions with a bounded error class.

#![allow(clippy::unwrap_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use fleet_bus::Transport;
use fleet_bus::scenarios::unique_name;
use fleet_tests::moto;
use fleet_workers::aws_calls::{AwsCalls, CallCount};

#[tokio::test]
async fn calls_are_counted_by_service_and_operation() {
    // The process's Prometheus recorder, to read the metrics as they are exported.
    let metrics = fleet_workers::observe::metrics::install().unwrap();
    let config = moto::sdk_config().await;
    let table = unique_name("calls");
    fleet_tests::dynamo::single_table(&config, &table).await;
    let calls = AwsCalls::new();
    let client = calls.dynamodb_client(&config);
    for i in 0..3 {
        client
            .put_item()
            .table_name(&table)
            .item("PK", AttributeValue::S(format!("k{i}")))
            .item("SK", AttributeValue::S("x".into()))
            .send()
            .await
            .unwrap();
    }
    let missing = client
        .get_item()
        .table_name("no-such-table")
        .key("PK", AttributeValue::S("k".into()))
        .send()
        .await;
    assert!(missing.is_err());
    let transport = calls.sqs_transport(&config);
    assert!(transport.queue(&unique_name("absent")).await.is_err());

    assert_eq!(
        calls.get("DynamoDB", "PutItem"),
        CallCount {
            calls: 3,
            requests: 3,
            errors: 0
        }
    );
    let get = calls.get("DynamoDB", "GetItem");
    assert_eq!((get.calls, get.errors), (1, 1), "{calls}");
    assert!(calls.get("SQS", "GetQueueUrl").calls >= 1, "{calls}");
    assert_eq!(calls.calls_of("DynamoDB", &["PutItem", "GetItem"]), 4);
    assert!(calls.to_string().contains("PutItem"), "{calls}");

    // Exported by IAM action, failures by a bounded class read from moto's real answers.
    let text = metrics.render();
    for line in [
        "fleet_aws_requests_total{operation=\"dynamodb:PutItem\"} 3",
        "fleet_aws_errors_total{operation=\"dynamodb:GetItem\",error_type=\"not_found\"} 1",
        // The estimated request units: three small puts, one read (refused, still counted).
        "fleet_dynamodb_write_units_total{operation=\"dynamodb:PutItem\"} 3",
        "fleet_dynamodb_read_units_total{operation=\"dynamodb:GetItem\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(
        text.contains(
            "fleet_aws_errors_total{operation=\"sqs:GetQueueUrl\",error_type=\"not_found\"}"
        ),
        "{text}"
    );
}
