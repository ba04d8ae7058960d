//! The versioned envelope every Fleet message travels in: a header that says what the message is,
//! who sent it and why, and the typed payload.

use chrono::{DateTime, Utc};
use fleet_bus::{AttributeValue, MessageAttributes};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::SchemaError;
use crate::event::Event;
use crate::text::{Line, LineRule, Rule};

/// Longest message id, correlation id and causation id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest message type name, in characters.
pub const MAX_TYPE_CHARS: usize = 64;
/// Longest producer name, in characters.
pub const MAX_PRODUCER_CHARS: usize = 64;

/// The message attribute that carries the message type (for filter policies).
pub const ATTR_TYPE: &str = "type";
/// The message attribute that carries the version (a `Number`).
pub const ATTR_VERSION: &str = "version";

pub(crate) type IdText = Line<1, MAX_ID_CHARS>;
pub(crate) type TypeText = Line<1, MAX_TYPE_CHARS>;
pub(crate) type ProducerText = Line<1, MAX_PRODUCER_CHARS>;

/// Everything in the envelope but the payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(title = "Fleet message header")]
pub struct Header {
    /// Unique id of this message (a UUID when Fleet makes it), 1 to 128 characters.
    #[schemars(with = "IdText")]
    pub id: String,
    /// The message type, such as `order.placed`.
    #[serde(rename = "type")]
    #[schemars(with = "TypeText")]
    pub event_type: String,
    /// The payload's version: the type's current one, or the one before it (a decoded
    /// envelope always carries the current one, after upgrading the payload).
    #[schemars(range(min = 1))]
    pub version: u32,
    /// When the event happened (RFC 3339).
    pub occurred_at: DateTime<Utc>,
    /// The id shared by every message of one business flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IdText>")]
    pub correlation_id: Option<String>,
    /// The id of the message that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IdText>")]
    pub causation_id: Option<String>,
    /// The service that produced the message, 1 to 64 characters.
    #[schemars(with = "ProducerText")]
    pub producer: String,
}

impl Header {
    /// Checks the header's fields as a decoder would.
    ///
    /// # Errors
    /// `InvalidField` naming the first field that breaks its rule.
    pub fn check(&self) -> Result<(), SchemaError> {
        check_text::<LineRule<1, MAX_ID_CHARS>>("id", &self.id)?;
        check_text::<LineRule<1, MAX_TYPE_CHARS>>("type", &self.event_type)?;
        if self.version == 0 {
            return Err(SchemaError::invalid("version", "expected at least 1"));
        }
        for (field, value) in [
            ("correlation_id", &self.correlation_id),
            ("causation_id", &self.causation_id),
        ] {
            if let Some(v) = value {
                check_text::<LineRule<1, MAX_ID_CHARS>>(field, v)?;
            }
        }
        check_text::<LineRule<1, MAX_PRODUCER_CHARS>>("producer", &self.producer)
    }

    /// The message attributes Fleet's producer sets: `type`, `version` and the routing keys.
    pub fn attributes(&self, routing_keys: Vec<(&'static str, String)>) -> MessageAttributes {
        let mut attrs = MessageAttributes::new();
        attrs.insert(ATTR_TYPE.into(), AttributeValue::string(&self.event_type));
        attrs.insert(ATTR_VERSION.into(), AttributeValue::number(self.version));
        for (name, value) in routing_keys {
            attrs.insert(name.into(), AttributeValue::string(value));
        }
        attrs
    }
}

pub(crate) fn check_text<R: Rule>(field: &str, value: &str) -> Result<(), SchemaError> {
    R::check(value).map_err(|reason| SchemaError::invalid(field, reason))
}

/// A message: the header and a typed payload. Decode one with [`crate::decode`] or a
/// [`crate::Registry`], which check the version and the payload's rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope<E> {
    /// What the message is and where it comes from.
    #[serde(flatten)]
    pub header: Header,
    /// The event.
    pub payload: E,
}

impl<E: Event> Envelope<E> {
    /// A new message carrying `event`, with a fresh UUID, the event's type and version, and the
    /// current time.
    pub fn new(event: E, producer: &str) -> Self {
        Self {
            header: Header {
                id: uuid::Uuid::new_v4().to_string(),
                event_type: E::TYPE.to_owned(),
                version: E::VERSION,
                occurred_at: Utc::now(),
                correlation_id: None,
                causation_id: None,
                producer: producer.to_owned(),
            },
            payload: event,
        }
    }

    /// Checks the header and the payload's rules as a decoder would, before sending.
    ///
    /// # Errors
    /// `InvalidField` for a header field, `Rejected` for a payload rule.
    pub fn check(&self) -> Result<(), SchemaError> {
        self.header.check()?;
        self.payload
            .validate()
            .map_err(|reason| SchemaError::Rejected {
                event_type: E::TYPE.to_owned(),
                reason,
            })
    }

    /// The message attributes Fleet's producer sets: `type`, `version` and the routing keys.
    pub fn attributes(&self) -> MessageAttributes {
        self.header.attributes(self.payload.routing_keys())
    }
}

impl<E> Envelope<E> {
    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.header.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.header.causation_id = Some(id.into());
        self
    }

    /// Marks this message as caused by `cause`: its causation id is the cause's id, and it joins
    /// the cause's correlation (or starts one at the cause).
    #[must_use]
    pub fn caused_by<C>(mut self, cause: &Envelope<C>) -> Self {
        let correlation = cause
            .header
            .correlation_id
            .clone()
            .unwrap_or_else(|| cause.header.id.clone());
        self.header.correlation_id = Some(correlation);
        self.header.causation_id = Some(cause.header.id.clone());
        self
    }

    /// The same message with the payload converted.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Envelope<F> {
        Envelope {
            header: self.header,
            payload: f(self.payload),
        }
    }
}
