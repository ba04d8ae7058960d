//! The one error type of `fleet-schemas`, and how a worker turns it into a dead-letter reason.

use fleet_bus::{BusError, HandlerError};

/// Everything that can be wrong with a message: too big, not JSON, not Fleet's envelope, an
/// unknown type or version, or a payload its schema refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The body is larger than any Fleet producer may send.
    #[error("message body is {size} bytes, over the {limit}-byte limit")]
    Oversize {
        /// The body's size in bytes.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The body claims to be an SNS notification but is malformed.
    #[error("body is an SNS notification that cannot be unwrapped")]
    BadEnvelope(#[source] BusError),
    /// The body is not one JSON text (syntax error, truncation, trailing data, nesting too deep,
    /// a duplicate key, a byte order mark).
    #[error("invalid JSON")]
    InvalidJson {
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The body is JSON, but not an object.
    #[error("message is a JSON {found}, not an object")]
    NotAnObject {
        /// `array`, `string`, `number`, `boolean` or `null`.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's path, such as `producer` or `payload.items[0].sku`.
        field: String,
    },
    /// A field has the wrong JSON type or a value its schema refuses.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The field's path, such as `version` or `payload.currency`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value built in code breaks its type's rule (a producer-side check).
    #[error("invalid value: {reason}")]
    InvalidValue {
        /// What is wrong with it.
        reason: String,
    },
    /// A payload that parsed but breaks a rule of its event type (`Event::validate`).
    #[error("invalid {event_type} payload: {reason}")]
    Rejected {
        /// The message type.
        event_type: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A previous-version payload that cannot be upgraded to the current version.
    #[error("cannot upgrade {event_type} v{from} payload: {reason}")]
    Upgrade {
        /// The message type.
        event_type: String,
        /// The version the payload was sent as.
        from: u32,
        /// Why the upgrade failed.
        reason: String,
    },
    /// The message type is not one this decoder knows.
    #[error("unknown message type {event_type:?} (known: {known})")]
    UnknownType {
        /// The type the message claims.
        event_type: String,
        /// The types this decoder knows, comma-separated.
        known: String,
    },
    /// The destination refused the message, or the call failed after its retries.
    #[error("sending failed")]
    Send(#[source] BusError),
    /// The version is neither the current one nor the one before it.
    #[error("unsupported version {version} of {event_type} (supported: {supported})")]
    UnsupportedVersion {
        /// The message type.
        event_type: String,
        /// The version as the message gave it.
        version: String,
        /// The versions accepted, such as `2 and 1`.
        supported: String,
    },
}

impl SchemaError {
    /// The error kind as a snake_case label, for dead-letter reasons and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SchemaError::Oversize { .. } => "oversize",
            SchemaError::BadEnvelope(_) => "bad_envelope",
            SchemaError::InvalidJson { .. } => "invalid_json",
            SchemaError::NotAnObject { .. } => "not_an_object",
            SchemaError::MissingField { .. } => "missing_field",
            SchemaError::InvalidField { .. }
            | SchemaError::InvalidValue { .. }
            | SchemaError::Rejected { .. }
            | SchemaError::Upgrade { .. } => "invalid_field",
            SchemaError::UnknownType { .. } => "unknown_type",
            SchemaError::UnsupportedVersion { .. } => "unsupported_version",
            SchemaError::Send(_) => "send_failed",
        }
    }

    /// The path of the field at fault, when one field is.
    pub fn field(&self) -> Option<&str> {
        match self {
            SchemaError::MissingField { field } | SchemaError::InvalidField { field, .. } => {
                Some(field)
            }
            SchemaError::UnknownType { .. } => Some("type"),
            SchemaError::UnsupportedVersion { .. } => Some("version"),
            _ => None,
        }
    }

    /// The message and its causes on one line (`a: b: c`), for logs and dead-letter reasons.
    pub fn report(&self) -> String {
        fleet_bus::chain_text(self)
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        SchemaError::MissingField {
            field: field.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SchemaError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn json(source: serde_json::Error) -> Self {
        SchemaError::InvalidJson {
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}

/// Bad input never gets better by retrying: every schema error about the message dead-letters
/// it at once, labelled with [`SchemaError::label`]. A failed send (`Send`, from
/// [`Producer`](crate::Producer)) is not about the message: it follows the bus's one rule,
/// [`HandlerError::from(BusError)`](HandlerError#impl-From<BusError>-for-HandlerError), so
/// throttling, 5xx, network errors and a missing topic are retried (`bus_unavailable`,
/// `bus_not_found`) and only a refused request dead-letters (`bus_refused`).
///
/// The schema error is the handler error's cause, so [`HandlerError::cause_text`] (the
/// dead-letter reason's message) reads `invalid JSON: EOF while parsing ...`, each level once.
impl From<SchemaError> for HandlerError {
    fn from(e: SchemaError) -> Self {
        match e {
            SchemaError::Send(bus) => HandlerError::from(bus),
            e => {
                let label = e.label();
                HandlerError::permanent(e).with_label(label)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use super::*;
    use fleet_bus::consumer::FailureKind;

    #[test]
    fn schema_errors_are_permanent_handler_errors_with_the_label_and_the_cause() {
        let json = serde_json::from_str::<serde_json::Value>("{\"a\": tru").unwrap_err();
        let e: HandlerError = SchemaError::json(json).into();
        assert_eq!(e.kind(), FailureKind::Permanent);
        assert_eq!(e.label(), "invalid_json");
        let text = e.cause_text();
        assert!(
            text.ends_with("invalid JSON: EOF while parsing a value at line 1 column 9"),
            "{text}"
        );
    }

    fn throttled() -> BusError {
        BusError::Api {
            resource: "fleet-events".into(),
            operation: "PublishBatch",
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
            retryable: true,
            source: None,
        }
    }

    #[test]
    fn send_failures_follow_the_bus_rule_and_bad_input_stays_permanent() {
        let e: HandlerError = SchemaError::Send(throttled()).into();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Transient, "bus_unavailable")
        );
        let missing = BusError::NotFound {
            kind: "topic",
            name: "fleet-events".into(),
        };
        let e: HandlerError = SchemaError::Send(missing).into();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Transient, "bus_not_found")
        );
        let refused = BusError::Api {
            resource: "fleet-events".into(),
            operation: "PublishBatch",
            code: "InvalidParameterValue".into(),
            message: "no".into(),
            retryable: false,
            source: None,
        };
        let e: HandlerError = SchemaError::Send(refused).into();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Permanent, "bus_refused")
        );
        let e: HandlerError = SchemaError::invalid("payload.currency", "not a code").into();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Permanent, "invalid_field")
        );
        let e: HandlerError =
            SchemaError::BadEnvelope(BusError::Envelope("no Message".into())).into();
        assert_eq!(
            (e.kind(), e.label()),
            (FailureKind::Permanent, "bad_envelope")
        );
    }

    /// Every level of a chain printed by walking `source()` (as anyhow's `{:#}` does).
    fn walk(e: &HandlerError) -> Vec<String> {
        let mut levels = vec![e.to_string()];
        let mut cause = StdError::source(e);
        while let Some(c) = cause {
            levels.push(c.to_string());
            cause = c.source();
        }
        levels
    }

    #[test]
    fn the_dead_letter_reason_and_a_chain_walk_print_each_level_once() {
        let json = serde_json::from_str::<serde_json::Value>("{\"a\": tru").unwrap_err();
        let e: HandlerError = SchemaError::json(json).into();
        assert_eq!(
            e.cause_text(),
            "invalid JSON: EOF while parsing a value at line 1 column 9"
        );
        let walked = walk(&e).join(": ");
        assert_eq!(
            walked,
            "permanent failure (invalid_json): invalid JSON: EOF while parsing a value at line 1 column 9"
        );
        let e: HandlerError = SchemaError::Send(throttled()).into();
        assert_eq!(
            e.cause_text(),
            "PublishBatch on fleet-events failed with ThrottlingException: Rate exceeded"
        );
        assert_eq!(walk(&e).join(": ").matches("Rate exceeded").count(), 1);
    }

    #[test]
    fn messages_are_lowercase_without_a_trailing_period() {
        let errors = [
            SchemaError::missing("payload.items"),
            SchemaError::invalid("version", "expected an integer"),
            SchemaError::NotAnObject { found: "array" },
            SchemaError::Oversize { size: 2, limit: 1 },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        }
    }
}
