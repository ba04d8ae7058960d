//! Metrics on Lambda: each invocation prints one line in CloudWatch's embedded metric format
//! (EMF), which CloudWatch Logs turns into metrics with no agent and no API call. A function has
//! no `/metrics` for Prometheus to scrape; these are the engine's outcome counters
//! (`fleet_messages_settled_total{outcome}` under `fleet run`) per invocation, in namespace
//! `Fleet`, dimension `Worker`.
//!
//! Specification: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::outcome::{BatchOutcome, RecordOutcome};

/// The metrics' namespace.
pub const NAMESPACE: &str = "Fleet";

/// The EMF line of one invocation of `worker`'s function on `queue`.
pub fn line(worker: &str, queue: &str, outcome: &BatchOutcome, took: Duration) -> String {
    let count =
        |f: fn(&RecordOutcome) -> bool| outcome.records.iter().filter(|(_, o)| f(o)).count() as u64;
    let counts: [(&str, u64); 6] = [
        ("MessagesReceived", outcome.records.len() as u64),
        ("MessagesAcked", count(|o| *o == RecordOutcome::Acked)),
        (
            "MessagesRetried",
            count(|o| matches!(o, RecordOutcome::Retried { .. })),
        ),
        (
            "MessagesDeadLettered",
            count(|o| matches!(o, RecordOutcome::DeadLettered { .. })),
        ),
        (
            "DeadLetterSendsFailed",
            count(|o| matches!(o, RecordOutcome::DeadLetterFailed { .. })),
        ),
        ("MessagesHeldBack", count(|o| *o == RecordOutcome::HeldBack)),
    ];
    let mut definitions: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({ "Name": name, "Unit": "Count" }))
        .collect();
    definitions.push(json!({ "Name": "InvocationDuration", "Unit": "Milliseconds" }));
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Worker"]],
                "Metrics": definitions
            }]
        }),
    );
    root.insert("Worker".into(), json!(worker));
    // Not a dimension: searchable in the logs without multiplying the metrics' cost.
    root.insert("Queue".into(), json!(queue));
    for (name, value) in counts {
        root.insert(name.into(), json!(value));
    }
    root.insert(
        "InvocationDuration".into(),
        json!(took.as_secs_f64() * 1000.0),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_one_emf_document_whose_every_metric_has_its_value() {
        let outcome = BatchOutcome {
            records: vec![
                ("a".into(), RecordOutcome::Acked),
                ("b".into(), RecordOutcome::Acked),
                ("c".into(), RecordOutcome::Retried { label: "x".into() }),
                ("d".into(), RecordOutcome::DeadLettered { kind: "y".into() }),
                ("e".into(), RecordOutcome::HeldBack),
            ],
        };
        let text = line(
            "orders",
            "fleet-orders",
            &outcome,
            Duration::from_millis(42),
        );
        assert!(!text.contains('\n'), "one log line");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert!(
            doc["_aws"]["Timestamp"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000)
        );
        // Every dimension and every metric the directive names is a member of the root.
        for dimension in directive["Dimensions"][0]
            .as_array()
            .expect("a dimension set")
        {
            assert!(doc[dimension.as_str().expect("a name")].is_string());
        }
        let metrics = directive["Metrics"].as_array().expect("metrics");
        for m in metrics {
            let name = m["Name"].as_str().expect("a name");
            assert!(doc[name].is_number(), "{name} has no value: {doc}");
        }
        assert_eq!(metrics.len(), 7);
        assert_eq!(
            (
                &doc["Worker"],
                &doc["MessagesReceived"],
                &doc["MessagesAcked"],
                &doc["MessagesRetried"],
                &doc["MessagesDeadLettered"],
                &doc["DeadLetterSendsFailed"],
                &doc["MessagesHeldBack"],
                &doc["InvocationDuration"]
            ),
            (
                &json!("orders"),
                &json!(5),
                &json!(2),
                &json!(1),
                &json!(1),
                &json!(0),
                &json!(1),
                &json!(42.0)
            )
        );
    }
}
