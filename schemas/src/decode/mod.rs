//! Decoding a message body into a typed envelope, in the order that protects workers: size,
//! SNS envelope, JSON, object, header, type, version, upgrade, payload, rules. Every failure is a
//! [`SchemaError`]; no input panics.

mod json;
mod path;
mod raw;

use std::sync::LazyLock;

pub use raw::MAX_BODY_BYTES;
pub(crate) use raw::RawMessage;

use crate::envelope::Envelope;
use crate::error::SchemaError;
use crate::event::{Event, supported_versions};
use crate::events::FleetEvent;
use crate::registry::Registry;

static FLEET: LazyLock<Registry<Envelope<FleetEvent>>> = LazyLock::new(Registry::fleet);

/// Decodes a message of any Fleet type from an SQS body (raw, or an SNS notification).
///
/// # Errors
/// A [`SchemaError`] whose [`label`](SchemaError::label) says what is wrong.
pub fn decode(body: &str) -> Result<Envelope<FleetEvent>, SchemaError> {
    FLEET.decode(body)
}

/// Decodes a message that must be of type `E`.
///
/// # Errors
/// `UnknownType` for a message of another type, and everything [`decode`] reports.
pub fn decode_as<E: Event>(body: &str) -> Result<Envelope<E>, SchemaError> {
    let raw = RawMessage::parse(body)?;
    if raw.event_type != E::TYPE {
        return Err(SchemaError::UnknownType {
            event_type: raw.event_type,
            known: E::TYPE.to_owned(),
        });
    }
    typed(raw)
}

/// The type-specific half: version, upgrade, payload, rules.
pub(crate) fn typed<E: Event>(raw: RawMessage) -> Result<Envelope<E>, SchemaError> {
    let supported = supported_versions::<E>();
    let version = match &raw.version {
        Ok(v) if supported.contains(v) => *v,
        Ok(v) => return Err(unsupported::<E>(v.to_string(), &supported)),
        Err(text) => return Err(unsupported::<E>(text.clone(), &supported)),
    };
    let header = raw.header(E::VERSION);
    let payload = if version == E::VERSION {
        raw.payload
    } else {
        E::upgrade_previous(raw.payload).map_err(|reason| SchemaError::Upgrade {
            event_type: E::TYPE.to_owned(),
            from: version,
            reason,
        })?
    };
    let payload: E = path::from_value(payload, "payload")?;
    payload.validate().map_err(|reason| SchemaError::Rejected {
        event_type: E::TYPE.to_owned(),
        reason,
    })?;
    Ok(Envelope { header, payload })
}

fn unsupported<E: Event>(version: String, supported: &[u32]) -> SchemaError {
    let supported: Vec<String> = supported.iter().map(u32::to_string).collect();
    SchemaError::UnsupportedVersion {
        event_type: E::TYPE.to_owned(),
        version,
        supported: supported.join(" and "),
    }
}
