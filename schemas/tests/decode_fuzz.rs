//! Deterministic mutations of the good fixtures (no proptest): truncation at every byte, byte
//! replacements, deletions, and every JSON value swapped for awkward ones. Decoding never panics,
//! every refusal carries one of the known labels, and whatever is accepted survives re-encoding.

#![allow(clippy::unwrap_used)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use fleet_schemas::decode;
use serde_json::{Value, json};

const LABELS: [&str; 8] = [
    "oversize",
    "bad_envelope",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "invalid_field",
    "unknown_type",
    "unsupported_version",
];

/// Decodes one variant and checks the invariants; returns whether it was accepted.
fn run(origin: &str, body: &str) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| decode(body)));
    let Ok(outcome) = outcome else {
        panic!("decode panicked on a variant of {origin}: {body:?}");
    };
    match outcome {
        Ok(env) => {
            let again = decode(&serde_json::to_string(&env).unwrap());
            assert_eq!(again.as_ref().ok(), Some(&env), "{origin}: {body}");
            true
        }
        Err(e) => {
            assert!(LABELS.contains(&e.label()), "{origin}: {e}");
            assert!(!e.report().is_empty());
            false
        }
    }
}

fn byte_variants(text: &str) -> Vec<String> {
    const REPLACEMENTS: [u8; 9] = [b'"', b'\\', b'{', b'}', b'[', b',', b'0', b' ', 0];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..bytes.len() {
        out.push(String::from_utf8_lossy(&bytes[..i]).into_owned());
        let mut flipped = bytes.to_vec();
        flipped[i] = REPLACEMENTS[i % REPLACEMENTS.len()];
        out.push(String::from_utf8_lossy(&flipped).into_owned());
        let mut deleted = bytes.to_vec();
        deleted.remove(i);
        out.push(String::from_utf8_lossy(&deleted).into_owned());
    }
    out
}

/// Every leaf and container of `value`, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn value_variants(text: &str) -> Vec<String> {
    let awkward = [
        json!(null),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(1.5),
        json!(""),
        json!("x".repeat(1000)),
        json!("\u{0}"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let original: Value = serde_json::from_str(text).unwrap();
    let mut at = Vec::new();
    pointers(&original, String::new(), &mut at);
    let mut out = Vec::new();
    for pointer in at.iter().filter(|p| !p.is_empty()) {
        for value in &awkward {
            let mut v = original.clone();
            *v.pointer_mut(pointer).unwrap() = value.clone();
            out.push(v.to_string());
        }
    }
    out
}

#[test]
fn truncations_and_byte_mutations_never_panic() {
    let mut total = 0;
    for name in [
        "order.placed.v2.json",
        "email.requested.direct.v2.sns-moto.json",
    ] {
        for body in byte_variants(&common::fixture(name)) {
            run(name, &body);
            total += 1;
        }
    }
    assert!(total >= 2000, "only {total} variants");
}

#[test]
fn awkward_values_anywhere_never_panic() {
    let mut total = 0;
    let mut accepted = 0;
    for name in common::fixture_names() {
        let text = common::fixture(&name);
        // SNS fixtures wrap their envelope in a string; mutate the envelope itself.
        let text = match fleet_bus::sns::SnsEnvelope::detect(&text).unwrap() {
            Some(sns) => sns.message,
            None => text,
        };
        for body in value_variants(&text) {
            accepted += usize::from(run(&name, &body));
            total += 1;
        }
    }
    assert!(total >= 2000, "only {total} variants");
    assert!(
        accepted > 0 && accepted < total,
        "{accepted} of {total} accepted"
    );
}
