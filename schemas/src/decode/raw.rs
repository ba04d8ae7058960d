//! The type-independent half of decoding: size, SNS envelope, JSON, and the header fields.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use fleet_bus::limits::MAX_SQS_MESSAGE_BYTES;
use fleet_bus::sns::SnsEnvelope;
use serde_json::{Map, Value};

use super::json;
use crate::envelope::{Header, MAX_ID_CHARS, MAX_PRODUCER_CHARS, MAX_TYPE_CHARS, check_text};
use crate::error::SchemaError;
use crate::events::upgrade::json_kind;
use crate::text::{LineRule, Rule};
use crate::time::parse_rfc3339;

/// Largest message body (or SNS `Message`) a Fleet producer sends: SNS's limit, which Fleet's
/// producer applies to every message so any message can go through a topic.
pub const MAX_BODY_BYTES: usize = fleet_bus::limits::MAX_SNS_MESSAGE_BYTES;

/// A message whose header has been read, with the version and payload not yet checked against
/// a type.
pub(crate) struct RawMessage {
    pub(crate) event_type: String,
    /// The version if it is a `u32`; otherwise the number as written (always unsupported).
    pub(crate) version: Result<u32, String>,
    header: HeaderParts,
    pub(crate) payload: Value,
}

struct HeaderParts {
    id: String,
    occurred_at: DateTime<Utc>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    producer: String,
}

impl RawMessage {
    /// Reads a body: raw or SNS-enveloped, size-checked, strictly parsed, header checked.
    pub(crate) fn parse(body: &str) -> Result<Self, SchemaError> {
        // Nothing larger can arrive on SQS; the check keeps the SNS envelope parse bounded.
        check_size(body, MAX_SQS_MESSAGE_BYTES)?;
        let text: Cow<'_, str> = match SnsEnvelope::detect(body) {
            Ok(Some(envelope)) => Cow::Owned(envelope.message),
            Ok(None) => Cow::Borrowed(body),
            Err(e) => return Err(SchemaError::BadEnvelope(e)),
        };
        // The limit applies to what the producer sent, not to SNS's wrapping of it.
        check_size(&text, MAX_BODY_BYTES)?;
        match json::parse(&text)? {
            Value::Object(map) => Self::from_object(map).inspect(Self::record_correlation),
            other => Err(SchemaError::NotAnObject {
                found: json_kind(&other),
            }),
        }
    }

    fn from_object(mut map: Map<String, Value>) -> Result<Self, SchemaError> {
        let id = take_text::<LineRule<1, MAX_ID_CHARS>>(&mut map, "id")?;
        let event_type = take_text::<LineRule<1, MAX_TYPE_CHARS>>(&mut map, "type")?;
        let version = take_version(&mut map)?;
        let occurred_at = take_time(&mut map, "occurred_at")?;
        let correlation_id =
            take_optional::<LineRule<1, MAX_ID_CHARS>>(&mut map, "correlation_id")?;
        let causation_id = take_optional::<LineRule<1, MAX_ID_CHARS>>(&mut map, "causation_id")?;
        let producer = take_text::<LineRule<1, MAX_PRODUCER_CHARS>>(&mut map, "producer")?;
        let payload = match map.remove("payload") {
            None => return Err(SchemaError::missing("payload")),
            Some(p @ Value::Object(_)) => p,
            Some(other) => return Err(expected("payload", "an object", &other)),
        };
        Ok(RawMessage {
            event_type,
            version,
            header: HeaderParts {
                id,
                occurred_at,
                correlation_id,
                causation_id,
                producer,
            },
            payload,
        })
    }

    /// Records the message's correlation id in the current span (the engine's `process` span
    /// declares the field empty), so every line logged while the message is handled carries
    /// it. Nothing happens outside such a span.
    fn record_correlation(&self) {
        if let Some(id) = &self.header.correlation_id {
            tracing::Span::current().record("correlation_id", id.as_str());
        }
    }

    /// The header of the decoded message, which carries `version` (the current one) after any
    /// upgrade.
    pub(crate) fn header(&self, version: u32) -> Header {
        Header {
            id: self.header.id.clone(),
            event_type: self.event_type.clone(),
            version,
            occurred_at: self.header.occurred_at,
            correlation_id: self.header.correlation_id.clone(),
            causation_id: self.header.causation_id.clone(),
            producer: self.header.producer.clone(),
        }
    }
}

fn check_size(text: &str, limit: usize) -> Result<(), SchemaError> {
    if text.len() > limit {
        return Err(SchemaError::Oversize {
            size: text.len(),
            limit,
        });
    }
    Ok(())
}

fn expected(field: &str, what: &str, got: &Value) -> SchemaError {
    SchemaError::invalid(field, format!("expected {what}, got {}", json_kind(got)))
}

fn take_text<R: Rule>(map: &mut Map<String, Value>, field: &str) -> Result<String, SchemaError> {
    match map.remove(field) {
        None => Err(SchemaError::missing(field)),
        Some(Value::String(s)) => check_text::<R>(field, &s).map(|()| s),
        Some(other) => Err(expected(field, "a string", &other)),
    }
}

/// An optional header field: absent and `null` both mean "none".
fn take_optional<R: Rule>(
    map: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<String>, SchemaError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => take_text::<R>(map, field).map(Some),
    }
}

fn take_time(map: &mut Map<String, Value>, field: &str) -> Result<DateTime<Utc>, SchemaError> {
    match map.remove(field) {
        None => Err(SchemaError::missing(field)),
        Some(Value::String(s)) => parse_rfc3339(&s).map_err(|r| SchemaError::invalid(field, r)),
        Some(other) => Err(expected(field, "an RFC 3339 timestamp string", &other)),
    }
}

/// The version must be a whole JSON number (`2`, or `2.0` as Python and Java write it). One that
/// is not a `u32` (negative, huge) is kept as text: it is an unsupported version, reported once
/// the type says which versions it supports.
fn take_version(map: &mut Map<String, Value>) -> Result<Result<u32, String>, SchemaError> {
    match map.remove("version") {
        None => Err(SchemaError::missing("version")),
        Some(Value::Number(n)) if json::is_whole(&n) => Ok(json::whole(&n)
            .and_then(|w| w.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| n.to_string())),
        Some(Value::Number(n)) => Err(SchemaError::invalid(
            "version",
            format!("expected an integer, got {n}"),
        )),
        Some(other) => Err(expected("version", "an integer", &other)),
    }
}
