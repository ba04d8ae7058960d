//! Fleet's typed message schemas: the versioned envelope, the event types, a decoder that never
//! panics and never lets bad input loop, typed dispatch for consumers, and JSON Schema export for
//! producers in any language.
//!
//! - [`Envelope`] / [`Header`]: the JSON every Fleet message is (`id`, `type`, `version`,
//!   `occurred_at`, `correlation_id`, `causation_id`, `producer`, `payload`);
//! - [`Event`]: what a payload type declares (type name, version, upgrade from the previous
//!   version, extra rules, routing keys); the types are in [`events`];
//! - [`decode`], [`decode_as`] and [`Registry`]: body to typed envelope, or a [`SchemaError`]
//!   whose [`label`](SchemaError::label) names the problem;
//! - [`Router`]: a consumer handler that routes by type and dead-letters what it cannot decode;
//!   what it does with types it has no handler for is a choice ([`Unknown`], a fallback);
//! - [`json_schemas`] / [`write_json_schemas`]: the schemas in `schemas/json`, regenerated with
//!   `cargo run -p fleet-schemas --bin export-schemas`.
//!
//! A consumer accepts the current version of a type and the one before it; the previous version
//! is upgraded before the payload is read, so handlers only ever see the current shape.

pub mod bounded;
pub mod codes;
mod decode;
mod dispatch;
mod envelope;
mod error;
mod event;
pub mod events;
pub mod metrics;
mod producer;
mod registry;
mod schema;
pub mod text;
mod time;

pub use decode::{MAX_BODY_BYTES, decode, decode_as};
pub use dispatch::{Router, Unknown};
pub use envelope::{
    ATTR_TYPE, ATTR_VERSION, Envelope, Header, MAX_ID_CHARS, MAX_PRODUCER_CHARS, MAX_TYPE_CHARS,
};
pub use error::SchemaError;
pub use event::{Event, supported_versions};
pub use events::{
    AnalyticsTracked, CancelReason, Carrier, EmailContent, EmailRequested, EmailSent, FleetEvent,
    LineItem, MailerKind, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, OrderShipped,
    event_types,
};
pub use metrics::{DECODE_FAILURES, SKIPPED};
pub use producer::Producer;
pub use registry::Registry;
pub use schema::{HEADER_SCHEMA_FILE, json_schemas, schema_file_name, write_json_schemas};
