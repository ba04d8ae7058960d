//! SQS events as Lambda delivers them, and the queues they come from on moto.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use fleet_bus::aws::SqsTransport;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::{Declaration, Message, QueueDecl, ReceiveRequest, Transport};

/// cargo-lambda (PyPI's `cargo-lambda`, which `./scripts/test` installs into `.venv`), or
/// `FLEET_CARGO_LAMBDA`; fails naming the install step.
pub fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("FLEET_CARGO_LAMBDA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/cargo-lambda"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "cargo-lambda not found at {}: run ./scripts/test (it installs cargo-lambda from scripts/requirements-test.txt into .venv), or .venv/bin/pip install -r scripts/requirements-test.txt",
        path.display()
    );
    path
}

/// One record of an SQS event, in the shape of AWS's documented sample event (standard queue;
/// with a group, FIFO: `MessageGroupId`, `MessageDeduplicationId`, `SequenceNumber`).
pub fn record(
    id: &str,
    body: &str,
    receive_count: u32,
    group: Option<&str>,
    queue: &str,
) -> serde_json::Value {
    let mut attributes = serde_json::json!({
        "ApproximateReceiveCount": receive_count.to_string(),
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185"
    });
    if let Some(g) = group {
        attributes["MessageGroupId"] = g.into();
        attributes["MessageDeduplicationId"] = format!("dedup-{id}").into();
        attributes["SequenceNumber"] = "18849496460467696128".into();
    }
    serde_json::json!({
        "messageId": id,
        "receiptHandle": format!("AQEB{id}receipt"),
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            "origin": {"stringValue": "lambda-test", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        },
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        "awsRegion": "us-east-1"
    })
}

/// An event of these records.
pub fn event(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "Records": records })
}

/// A source queue with a redrive policy to its own dead-letter queue (`max_receives`), both
/// FIFO when `fifo`; returns (queue, dead-letter queue).
pub async fn queues(
    t: &SqsTransport,
    prefix: &str,
    fifo: bool,
    max_receives: u32,
) -> (String, String) {
    let suffix = if fifo { ".fifo" } else { "" };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (queue, dlq) = (
        format!("{prefix}-{}{suffix}", &id[..8]),
        format!("{prefix}-{}-dlq{suffix}", &id[..8]),
    );
    t.declare(&Declaration::Queue(&QueueDecl::new(&dlq)))
        .await
        .unwrap();
    t.declare(&Declaration::Queue(
        &QueueDecl::new(&queue).dead_letter(&dlq, max_receives),
    ))
    .await
    .unwrap();
    (queue, dlq)
}

/// Everything in a queue now (received once, with a short wait).
pub async fn drain(t: &SqsTransport, queue: &str) -> Vec<Message> {
    let q = t.queue(queue).await.unwrap().queue();
    let mut out = Vec::new();
    loop {
        let got = q
            .receive(
                &ReceiveRequest::new(10, Duration::from_secs(1))
                    .visibility(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

/// Each dead letter's (body, reason).
pub fn reasons(dead: &[Message]) -> Vec<(String, DeadLetterReason)> {
    let mut out: Vec<_> = dead
        .iter()
        .map(|m| {
            let reason = DeadLetterReason::from_message(m)
                .unwrap_or_else(|| panic!("a dead letter without its reason: {m:?}"));
            (m.body.clone(), reason)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
