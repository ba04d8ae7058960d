//! `fleet send` and `fleet publish`: events from arguments or an NDJSON file, validated exactly
//! as a consumer will decode them, then sent in batches.
//!
//! A line is an event: `{"type": "order.placed", "payload": {...}}`, optionally with `version`,
//! `id`, `occurred_at`, `correlation_id`, `causation_id` and `producer` (a complete envelope is
//! a valid line too). What is missing is filled in: a new id, the current time, the current
//! version of the type, the producer given on the command line.

use std::collections::HashMap;

use fleet_bus::OutgoingMessage;
use fleet_schemas::{Producer, SchemaError, decode, event_types};
use serde_json::{Map, Value};

/// A line that cannot be sent, and why.
#[derive(Debug)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The error kind label (`missing_field`, `unknown_type`, ...).
    pub label: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.label, self.reason)
    }
}

/// Turns one event line into a Fleet envelope text, filling in what the line leaves out.
///
/// # Errors
/// `UnknownType` when the version is to be filled in for a type nobody knows.
fn complete(
    line: &str,
    producer: &str,
    versions: &HashMap<&str, u32>,
) -> Result<String, SchemaError> {
    let mut object: Map<String, Value> = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        // Let the decoder name what is wrong, exactly as a consumer would.
        _ => return Ok(line.to_owned()),
    };
    object
        .entry("id")
        .or_insert_with(|| Value::String(uuid::Uuid::new_v4().to_string()));
    object.entry("occurred_at").or_insert_with(|| {
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    });
    object
        .entry("producer")
        .or_insert_with(|| Value::String(producer.to_owned()));
    if !object.contains_key("version") {
        if let Some(t) = object.get("type").and_then(Value::as_str) {
            let Some(v) = versions.get(t) else {
                let mut known: Vec<&str> = versions.keys().copied().collect();
                known.sort_unstable();
                return Err(SchemaError::UnknownType {
                    event_type: t.to_owned(),
                    known: known.join(", "),
                });
            };
            object.insert("version".to_owned(), Value::from(*v));
        }
    }
    Ok(Value::Object(object).to_string())
}

/// Validates every line as a consumer would decode it and builds the messages to send. Blank
/// lines are skipped. Returns the messages and the lines that cannot be sent.
pub fn prepare(
    lines: &str,
    producer_name: &str,
    producer: &Producer,
) -> (Vec<OutgoingMessage>, Vec<BadLine>) {
    let versions: HashMap<&str, u32> = event_types().into_iter().collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in lines.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let result = complete(line, producer_name, &versions)
            .and_then(|text| decode(&text))
            .and_then(|env| producer.message_for(&env));
        match result {
            Ok(m) => good.push(m),
            Err(e) => bad.push(BadLine {
                line: i + 1,
                label: e.label(),
                reason: e.report(),
            }),
        }
    }
    (good, bad)
}

/// Puts every message in one FIFO group, deduplicated by its envelope id.
pub fn into_group(messages: &mut [OutgoingMessage], group: &str) {
    for m in messages {
        m.group_id = Some(group.to_owned());
        let id = serde_json::from_str::<Value>(&m.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
        m.deduplication_id = id;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fleet_bus::embedded::EmbeddedBus;
    use fleet_bus::producer::BatchProducer;
    use fleet_bus::{QueueDecl, Topology, Transport};

    use super::*;

    async fn producer() -> Producer {
        let bus = EmbeddedBus::new();
        bus.provision(&Topology {
            queues: vec![QueueDecl::new("q")],
            topics: vec![],
        })
        .await
        .expect("provision");
        let q: Arc<dyn fleet_bus::Sender> = bus.queue("q").await.expect("queue").sender();
        Producer::new(BatchProducer::to_queue("q", q), "cli")
    }

    #[tokio::test]
    async fn fills_in_the_header_and_reports_bad_lines_by_number() {
        let p = producer().await;
        let lines = [
            r#"{"type": "analytics.tracked", "payload": {"name": "signup", "subject": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z"}}"#,
            "",
            r#"{"type": "analytics.tracked", "version": 1, "payload": {"event": "signup", "user_id": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z"}}"#,
            r#"{"type": "order.teleported", "payload": {}}"#,
            r#"{"type": "analytics.tracked", "payload": {"name": "x"}}"#,
            "not json",
        ]
        .join("\n");
        let (good, bad) = prepare(&lines, "cli", &p);
        assert_eq!(good.len(), 2);
        let decoded =
            decode(&good[1].body).expect("sent version 1 is upgraded to the current version");
        assert_eq!(
            (decoded.header.version, decoded.header.producer.as_str()),
            (2, "cli")
        );
        let got: Vec<(usize, &str)> = bad.iter().map(|b| (b.line, b.label)).collect();
        assert_eq!(
            got,
            [
                (4, "unknown_type"),
                (5, "missing_field"),
                (6, "invalid_json")
            ]
        );
    }
}
