//! The published JSON Schemas (`schemas/json`) and the decoder give the same verdict on every
//! fixture and every corpus case, checked with a real validator (`jsonschema`, formats checked),
//! so a producer in any language that validates against the schemas sends what Fleet accepts.
//! What JSON Schema cannot state is listed in [`EXCEPTIONS`], each with its reason; an exception
//! whose case agrees again fails the test, so the list cannot go stale.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::corpus::{accepted, body, cases};
use fleet_bus::sns::SnsEnvelope;
use fleet_schemas::decode;
use jsonschema::Validator;
use serde_json::Value;

const PREVIOUS_VERSION: &str = "the schemas describe the current version only; a consumer \
    still accepts and upgrades the previous one while producers move (README, Versions)";
const SIZE: &str = "the 262,144-byte limit is a limit of the transport, which JSON Schema \
    cannot state";
const STRICT_JSON: &str = "a schema validates a parsed value; duplicate keys are refused before \
    (parsers disagree on which one wins)";
const CROSS_FIELD: &str = "the line totals (quantity times unit price, summed) must fit in 64 \
    bits: a rule across fields that JSON Schema cannot state";
const EMAIL_LENGTHS: &str = "RFC 5321 limits the local part to 64 bytes (and a domain label to \
    63); a pattern cannot count bytes, and validators' `idn-email` checks differ on it";

/// Cases (by fixture file name or corpus case name) where the schemas and the decoder disagree,
/// and why.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("analytics.tracked.v1.json", PREVIOUS_VERSION),
    ("analytics.tracked.v1.sns-moto.json", PREVIOUS_VERSION),
    ("email.requested.v1.json", PREVIOUS_VERSION),
    ("order.cancelled.v1.json", PREVIOUS_VERSION),
    ("order.paid.v1.json", PREVIOUS_VERSION),
    ("order.placed.v1.json", PREVIOUS_VERSION),
    ("order.refunded.v1.json", PREVIOUS_VERSION),
    ("order.shipped.v1.json", PREVIOUS_VERSION),
    ("previous version an integral float", PREVIOUS_VERSION),
    ("body over 256 KiB", SIZE),
    ("SNS message over 256 KiB", SIZE),
    ("duplicate payload key", STRICT_JSON),
    ("line totals overflow", CROSS_FIELD),
    ("email local part over 64 characters", EMAIL_LENGTHS),
];

/// The exported schemas by message type, compiled with format checking on (`date-time`,
/// `email`), as a careful producer would validate.
fn validators() -> BTreeMap<String, Validator> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let schema: Value =
            serde_json::from_str(&fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let Some(t) = schema
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
        else {
            continue; // header.json: the part every type shares
        };
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{t}: the schema does not compile: {e}"));
        out.insert(t.to_owned(), validator);
    }
    assert_eq!(out.len(), fleet_schemas::event_types().len());
    out
}

/// The schemas' verdict on a body as it arrives on a queue: `Err` with why it is refused.
fn by_schema(validators: &BTreeMap<String, Validator>, body: &str) -> Result<(), String> {
    // What the producer sent: an SNS notification's `Message`, or the body itself.
    let sent = match SnsEnvelope::detect(body) {
        Ok(Some(envelope)) => envelope.message,
        _ => body.to_owned(),
    };
    let value: Value = serde_json::from_str(&sent).map_err(|e| format!("not JSON: {e}"))?;
    let t = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let validator = validators
        .get(t)
        .ok_or_else(|| format!("no schema for type {t:?}"))?;
    match validator.iter_errors(&value).next() {
        None => Ok(()),
        Some(e) => Err(format!("{} at {}", e, e.instance_path())),
    }
}

/// Every input: (name, body), fixtures first.
fn inputs() -> Vec<(String, String)> {
    let fixtures = common::fixture_names()
        .into_iter()
        .map(|name| (name.clone(), common::fixture(&name)));
    let corpus = cases()
        .into_iter()
        .chain(accepted())
        .map(|case| (case.name.clone(), body(&case)));
    fixtures.chain(corpus).collect()
}

#[test]
fn the_exported_schemas_and_the_decoder_agree_on_every_case() {
    let validators = validators();
    let exceptions: BTreeMap<&str, &str> = EXCEPTIONS.iter().copied().collect();
    let inputs = inputs();
    assert!(inputs.len() >= 165, "only {} inputs", inputs.len());
    let mut failures = Vec::new();
    for (name, body) in &inputs {
        let decoder = decode(body).map(|_| ()).map_err(|e| e.report());
        let schema = by_schema(&validators, body);
        let agree = decoder.is_ok() == schema.is_ok();
        match (agree, exceptions.get(name.as_str())) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => failures.push(format!(
                "{name}: decoder {}, schema {}",
                verdict(&decoder),
                verdict(&schema)
            )),
            (true, Some(_)) => failures.push(format!(
                "{name}: listed as an exception, but both {}",
                verdict(&decoder)
            )),
        }
    }
    for name in exceptions.keys() {
        if !inputs.iter().any(|(n, _)| n == name) {
            failures.push(format!("{name}: an exception for no input"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn verdict(outcome: &Result<(), String>) -> String {
    match outcome {
        Ok(()) => "accepts".to_owned(),
        Err(why) => format!("refuses ({why})"),
    }
}
