//! The one error type of `fleet-schemas`, and how a worker turns it into a dead-letter reason.

use std::error::Error as StdError;
use std::fmt;

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
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
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

/// Bad input never gets better by retrying: every schema error dead-letters the message at once,
/// labelled with [`SchemaError::label`].
impl From<SchemaError> for HandlerError {
    fn from(e: SchemaError) -> Self {
        let label = e.label();
        HandlerError::permanent(Reported(e)).with_label(label)
    }
}

/// A schema error whose text carries its whole cause chain, because the dead-letter reason
/// (`fleet.error.message`) shows a handler error's source on one line and nothing deeper.
#[derive(Debug)]
struct Reported(SchemaError);

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.report())
    }
}

impl StdError for Reported {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_bus::consumer::FailureKind;

    #[test]
    fn schema_errors_are_permanent_handler_errors_with_the_label_and_the_cause() {
        let json = serde_json::from_str::<serde_json::Value>("{\"a\": tru").unwrap_err();
        let e: HandlerError = SchemaError::json(json).into();
        assert_eq!(e.kind(), FailureKind::Permanent);
        assert_eq!(e.label(), "invalid_json");
        let text = e.to_string();
        assert!(
            text.ends_with("invalid JSON: EOF while parsing a value at line 1 column 9"),
            "{text}"
        );
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
