//! JSON Schema export: one schema per message type (the whole envelope, current version), plus
//! the header, so producers in any language can validate what they send.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::envelope::{Envelope, Header};
use crate::event::Event;
use crate::events::{EventVisitor, FleetEvent, for_each_event};

/// File name of the header's schema.
pub const HEADER_SCHEMA_FILE: &str = "header.json";

/// The envelope of one message type: the header with `type` and `version` fixed, and the payload.
impl<E: Event> JsonSchema for Envelope<E> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}.v{}", E::TYPE, E::VERSION).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("fleet_schemas::Envelope<{}>", E::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = Header::json_schema(generator);
        let payload = generator.subschema_for::<E>();
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            properties.insert(
                "type".into(),
                json!({"description": "The message type.", "type": "string", "const": E::TYPE}),
            );
            properties.insert(
                "version".into(),
                json!({"description": "The payload's version.", "type": "integer", "const": E::VERSION}),
            );
            properties.insert("payload".into(), payload.to_value());
        }
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.push("payload".into());
        }
        schema.insert(
            "title".into(),
            format!("{} v{} message", E::TYPE, E::VERSION).into(),
        );
        schema.insert(
            "description".into(),
            format!(
                "A Fleet `{}` message, version {}: the envelope header and the payload.",
                E::TYPE,
                E::VERSION
            )
            .into(),
        );
        schema
    }
}

/// The schema file name of a message type, such as `order.placed.v2.json`.
pub fn schema_file_name<E: Event>() -> String {
    format!("{}.v{}.json", E::TYPE, E::VERSION)
}

/// Every schema Fleet publishes, as (file name, pretty JSON ending in a newline), header first.
pub fn json_schemas() -> Vec<(String, String)> {
    struct Collect(Vec<(String, String)>);
    impl EventVisitor for Collect {
        fn visit<E>(&mut self)
        where
            E: Event,
            FleetEvent: From<E>,
        {
            let schema = generator().into_root_schema_for::<Envelope<E>>();
            self.0.push((schema_file_name::<E>(), render(&schema)));
        }
    }
    let header = generator().into_root_schema_for::<Header>();
    let mut files = Collect(vec![(HEADER_SCHEMA_FILE.to_owned(), render(&header))]);
    for_each_event(&mut files);
    files.0
}

/// Draft 2020-12, with the bounds of every integer stated.
fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(integer_bounds))
        .into_generator()
}

/// States the range the decoder enforces on an integer: schemars gives `uint64` a minimum but no
/// maximum, and JSON Schema's `integer` alone takes any whole number, so without it a producer's
/// validator would pass an amount past 64 bits that the decoder refuses.
fn integer_bounds(schema: &mut Schema) {
    let (min, max) = match schema.get("format").and_then(Value::as_str) {
        Some("uint64") => (json!(0), json!(u64::MAX)),
        Some("uint32") => (json!(0), json!(u32::MAX)),
        Some("int64") => (json!(i64::MIN), json!(i64::MAX)),
        Some("int32") => (json!(i32::MIN), json!(i32::MAX)),
        _ => return,
    };
    if schema.get("minimum").is_none() {
        schema.insert("minimum".into(), min);
    }
    if schema.get("maximum").is_none() {
        schema.insert("maximum".into(), max);
    }
}

fn render(schema: &Schema) -> String {
    let mut text =
        serde_json::to_string_pretty(schema.as_value()).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Writes [`json_schemas`] into `dir` (creating it) and deletes the `*.json` files there that it
/// did not write, so a removed or renamed type leaves no stale schema behind.
///
/// # Errors
/// Any I/O error creating, writing, listing or deleting.
pub fn write_json_schemas(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let files = json_schemas();
    let mut written = Vec::with_capacity(files.len());
    for (name, text) in &files {
        let path = dir.join(name);
        fs::write(&path, text)?;
        written.push(path);
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json && path.is_file() && !written.contains(&path) {
            fs::remove_file(&path)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::OrderPlaced;

    #[test]
    fn one_schema_per_type_plus_the_header() {
        let names: Vec<String> = json_schemas().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "header.json",
                "order.placed.v2.json",
                "order.paid.v2.json",
                "order.shipped.v2.json",
                "order.cancelled.v2.json",
                "order.refunded.v2.json",
                "email.requested.v2.json",
                "email.sent.v1.json",
                "analytics.tracked.v2.json",
            ]
        );
    }

    #[test]
    fn a_type_schema_fixes_type_and_version_and_carries_the_constraints() {
        let schema = generator().into_root_schema_for::<Envelope<OrderPlaced>>();
        let v = schema.as_value();
        assert_eq!(v["properties"]["type"]["const"], "order.placed");
        assert_eq!(v["properties"]["version"]["const"], 2);
        assert_eq!(v["properties"]["id"]["maxLength"], 128);
        let required = v["required"].as_array().unwrap();
        for field in [
            "id",
            "type",
            "version",
            "occurred_at",
            "producer",
            "payload",
        ] {
            assert!(required.contains(&json!(field)), "{field}");
        }
        let payload = &v["$defs"]["OrderPlaced"];
        assert_eq!(payload["properties"]["items"]["maxItems"], 100);
        assert_eq!(payload["properties"]["currency"]["pattern"], "^[A-Z]{3}$");
        let item = &v["$defs"]["LineItem"]["properties"];
        assert_eq!(item["quantity"]["maximum"], 10_000);
        assert_eq!(item["unit_price_cents"]["maximum"], u64::MAX);
        assert_eq!(payload["properties"]["total_cents"]["maximum"], u64::MAX);
        assert_eq!(payload["properties"]["total_cents"]["minimum"], 0);
        assert!(
            payload.get("additionalProperties").is_none(),
            "unknown fields are allowed"
        );
    }
}
