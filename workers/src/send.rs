//! `fleet send` and `fleet publish`: events from arguments or an NDJSON file, validated exactly
//! as a consumer will decode them, then sent in batches.
//!
//! A line is an event: `{"type": "order.placed", "payload": {...}}`, optionally with `version`,
//! `id`, `occurred_at`, `correlation_id`, `causation_id` and `producer` (a complete envelope is
//! a valid line too). What is missing is filled in: a new id, the current time, the current
//! version of the type, the producer given on the command line. Everything else is sent as
//! written: fields a consumer does not know yet (in the header or the payload) and the version
//! the line gives. The `type`, `version` and routing-key attributes come from the envelope as a
//! consumer decodes it, the `version` attribute saying what the body says.

use std::collections::HashMap;

use fleet_bus::{AttributeValue, OutgoingMessage};
use fleet_schemas::{ATTR_VERSION, Envelope, FleetEvent, SchemaError, decode, event_types};
use serde_json::{Map, Value};

/// A line that cannot be sent, and why.
#[derive(Debug)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The error kind label (`missing_field`, `unknown_type`, `invalid_utf8`, ...).
    pub label: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.label, self.reason)
    }
}

/// The events of an input, ready to send, and the lines that cannot be sent.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The messages, in input order.
    pub messages: Vec<OutgoingMessage>,
    /// The line each message came from (same order as `messages`).
    pub lines: Vec<usize>,
    /// The lines that cannot be sent.
    pub bad: Vec<BadLine>,
}

/// The lines of an NDJSON input with their 1-based numbers (a `\r` before the `\n` is dropped).
pub fn lines_of(input: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    input.split(|b| *b == b'\n').enumerate().map(|(i, line)| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (i + 1, line)
    })
}

/// Validates every line as a consumer would decode it and builds the messages to send, each at
/// most `max_message_bytes`. Blank lines are skipped.
pub fn prepare<'a>(
    lines: impl IntoIterator<Item = (usize, &'a [u8])>,
    producer_name: &str,
    max_message_bytes: usize,
) -> Prepared {
    let versions: HashMap<&str, u32> = event_types().into_iter().collect();
    let mut out = Prepared::default();
    for (line, bytes) in lines {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim(),
            Err(e) => {
                out.bad.push(BadLine {
                    line,
                    label: "invalid_utf8",
                    reason: format!("byte {} is not UTF-8", e.valid_up_to() + 1),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match message_for_line(text, producer_name, &versions, max_message_bytes) {
            Ok(m) => {
                out.messages.push(m);
                out.lines.push(line);
            }
            Err(e) => out.bad.push(BadLine {
                line,
                label: e.label(),
                reason: e.report(),
            }),
        }
    }
    out
}

/// The message for one line: the line as written (completed), checked by the decoder.
fn message_for_line(
    line: &str,
    producer: &str,
    versions: &HashMap<&str, u32>,
    max_message_bytes: usize,
) -> Result<OutgoingMessage, SchemaError> {
    let (body, written_version) = complete(line, producer, versions)?;
    let envelope = decode(&body)?;
    let message = OutgoingMessage {
        attributes: attributes(&envelope, written_version),
        body,
        ..OutgoingMessage::default()
    };
    if message.size() > max_message_bytes {
        return Err(SchemaError::Oversize {
            size: message.size(),
            limit: max_message_bytes,
        });
    }
    Ok(message)
}

/// The envelope's attributes, with `version` as the body gives it (a decoded envelope carries
/// the current version, after upgrading an older payload).
fn attributes(
    envelope: &Envelope<FleetEvent>,
    written_version: Option<u64>,
) -> fleet_bus::MessageAttributes {
    let mut attributes = envelope.attributes();
    if let Some(v) = written_version {
        attributes.insert(ATTR_VERSION.to_owned(), AttributeValue::number(v));
    }
    attributes
}

/// Completes one event line into a Fleet envelope text: the header fields it leaves out are
/// inserted at the start of the object, and everything the line says is kept exactly as
/// written. Returns the text and the version it gives (an integer, or an integral float).
///
/// # Errors
/// `UnknownType` when the version is to be filled in for a type nobody knows.
fn complete(
    line: &str,
    producer: &str,
    versions: &HashMap<&str, u32>,
) -> Result<(String, Option<u64>), SchemaError> {
    let object: Map<String, Value> = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        // Let the decoder name what is wrong, exactly as a consumer would.
        _ => return Ok((line.to_owned(), None)),
    };
    let mut missing: Vec<(&str, Value)> = Vec::new();
    if !object.contains_key("id") {
        missing.push(("id", Value::from(uuid::Uuid::new_v4().to_string())));
    }
    if !object.contains_key("occurred_at") {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        missing.push(("occurred_at", Value::from(now)));
    }
    if !object.contains_key("producer") {
        missing.push(("producer", Value::from(producer)));
    }
    let version = match object.get("version") {
        Some(v) => v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        None => {
            let current = current_version(&object, versions)?;
            if let Some(v) = current {
                missing.push(("version", Value::from(v)));
            }
            current.map(u64::from)
        }
    };
    if missing.is_empty() {
        return Ok((line.to_owned(), version));
    }
    // The line parsed as an object, so after JSON whitespace it starts with `{`.
    let rest = line.trim_start().strip_prefix('{').unwrap_or_default();
    let mut text = String::with_capacity(line.len() + 128);
    text.push('{');
    for (i, (name, value)) in missing.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::from(*name).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    if !object.is_empty() {
        text.push(',');
    }
    text.push_str(rest);
    Ok((text, version))
}

/// The current version of the line's type (`None` when the line names no type).
///
/// # Errors
/// `UnknownType` for a type nobody knows.
fn current_version(
    object: &Map<String, Value>,
    versions: &HashMap<&str, u32>,
) -> Result<Option<u32>, SchemaError> {
    let Some(t) = object.get("type").and_then(Value::as_str) else {
        return Ok(None);
    };
    match versions.get(t) {
        Some(v) => Ok(Some(*v)),
        None => {
            let mut known: Vec<&str> = versions.keys().copied().collect();
            known.sort_unstable();
            Err(SchemaError::UnknownType {
                event_type: t.to_owned(),
                known: known.join(", "),
            })
        }
    }
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
    use super::*;

    const LIMIT: usize = fleet_schemas::MAX_BODY_BYTES;

    fn prepare_text(text: &str) -> Prepared {
        prepare(lines_of(text.as_bytes()), "cli", LIMIT)
    }

    #[test]
    fn fills_in_the_header_and_reports_bad_lines_by_number() {
        let lines = [
            r#"{"type": "analytics.tracked", "payload": {"name": "signup", "subject": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z"}}"#,
            "",
            r#"{"type": "analytics.tracked", "version": 1, "payload": {"event": "signup", "user_id": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z"}}"#,
            r#"{"type": "order.teleported", "payload": {}}"#,
            r#"{"type": "analytics.tracked", "payload": {"name": "x"}}"#,
            "not json",
        ]
        .join("\r\n");
        let p = prepare_text(&lines);
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.lines, [1, 3]);
        let decoded = decode(&p.messages[1].body).expect("a consumer decodes it");
        assert_eq!(
            (decoded.header.version, decoded.header.producer.as_str()),
            (2, "cli"),
            "decoded: upgraded to the current version"
        );
        let sent: Value = serde_json::from_str(&p.messages[1].body).expect("json");
        assert_eq!(sent["version"], 1, "sent as written");
        let got: Vec<(usize, &str)> = p.bad.iter().map(|b| (b.line, b.label)).collect();
        assert_eq!(
            got,
            [
                (4, "unknown_type"),
                (5, "missing_field"),
                (6, "invalid_json")
            ]
        );
    }

    #[test]
    fn a_complete_line_is_sent_byte_for_byte() {
        let line = r#"{ "id": "e-1", "type": "analytics.tracked", "version": 2, "occurred_at": "2026-11-26T15:00:00Z", "producer": "py", "x-extra": [1, 2.50], "payload": {"name": "signup", "subject": "u1", "properties": {"n": 1.0}, "timestamp": "2026-11-26T15:00:00Z"}}"#;
        let p = prepare_text(line);
        assert_eq!(p.messages[0].body, line);
    }

    #[test]
    fn an_invalid_utf8_byte_is_reported_by_its_line_and_column() {
        let mut input = b"\n".to_vec();
        input.extend_from_slice(b"{\"type\": \"x\xff\"}\n");
        let p = prepare(lines_of(&input), "cli", LIMIT);
        assert_eq!(p.messages.len(), 0);
        assert_eq!(p.bad.len(), 1);
        assert_eq!(
            p.bad[0].to_string(),
            "line 2: invalid_utf8: byte 12 is not UTF-8"
        );
    }
}
