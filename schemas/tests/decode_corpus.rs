//! The corpus of bad inputs (`tests/corpus/cases.ndjson`, one case per line): every case is
//! refused with the expected label, names the field where one is at fault, and never panics.
//!
//! A case gives its body in one of three ways: `body` (the text), `file` (a file under
//! `tests/corpus/files`, for bytes that are awkward inside JSON: NUL, BOM, bad escapes, deep
//! nesting), `json` (a JSON value, sent compactly), or `base` (a fixture) changed by `raw_replace`
//! (a text replacement), `truncate` / `truncate_end` (bytes kept / cut), or by JSON-pointer edits:
//! `set`, `remove`, `fill` (a string of n copies of a character), `repeat` (an array of n copies of
//! its first element), `keys` (an object of n keys). Then `pad_to` appends spaces up to n bytes and
//! `sns` wraps the body in an SNS notification.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;

use fleet_bus::sns::SnsEnvelope;
use fleet_bus::{HandlerError, MessageAttributes};
use fleet_schemas::{SchemaError, decode};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    label: String,
    field: Option<String>,
    mentions: Option<String>,
    body: Option<String>,
    file: Option<String>,
    json: Option<Value>,
    base: Option<String>,
    raw_replace: Option<(String, String)>,
    truncate: Option<usize>,
    truncate_end: Option<usize>,
    #[serde(default)]
    set: BTreeMap<String, Value>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    fill: BTreeMap<String, (String, usize)>,
    #[serde(default)]
    repeat: BTreeMap<String, usize>,
    #[serde(default)]
    keys: BTreeMap<String, usize>,
    pad_to: Option<usize>,
    #[serde(default)]
    sns: bool,
}

fn cases() -> Vec<Case> {
    let text = fs::read_to_string(common::corpus_dir().join("cases.ndjson")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Splits a JSON pointer into its parent's pointer and the last token.
fn split(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').unwrap()
}

fn put(root: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = split(pointer);
    match root
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"))
    {
        Value::Object(map) => {
            map.insert(last.to_owned(), value);
        }
        Value::Array(items) => items[last.parse::<usize>().unwrap()] = value,
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn edit(case: &Case, mut v: Value) -> Value {
    for pointer in &case.remove {
        let (parent, last) = split(pointer);
        let removed = v
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(last);
        assert!(removed.is_some(), "{}: nothing at {pointer}", case.name);
    }
    for (pointer, value) in &case.set {
        put(&mut v, pointer, value.clone());
    }
    for (pointer, (s, n)) in &case.fill {
        put(&mut v, pointer, Value::String(s.repeat(*n)));
    }
    for (pointer, n) in &case.repeat {
        let first = v.pointer(pointer).unwrap()[0].clone();
        put(&mut v, pointer, Value::Array(vec![first; *n]));
    }
    for (pointer, n) in &case.keys {
        let map: Map<String, Value> = (0..*n).map(|i| (format!("k{i}"), i.into())).collect();
        put(&mut v, pointer, Value::Object(map));
    }
    v
}

fn from_base(case: &Case, base: &str) -> String {
    let mut text = common::fixture(base);
    if let Some((from, to)) = &case.raw_replace {
        assert!(text.contains(from.as_str()), "{}: no {from:?}", case.name);
        text = text.replacen(from.as_str(), to, 1);
    }
    if let Some(n) = case.truncate {
        text.truncate(n);
    }
    if let Some(n) = case.truncate_end {
        text.truncate(text.len() - n);
    }
    let edits = case.set.len() + case.remove.len() + case.fill.len();
    if edits + case.repeat.len() + case.keys.len() > 0 {
        text = edit(case, serde_json::from_str(&text).unwrap()).to_string();
    }
    text
}

fn body(case: &Case) -> String {
    let mut text = match (&case.body, &case.file, &case.json, &case.base) {
        (Some(b), None, None, None) => b.clone(),
        (None, Some(f), None, None) => {
            fs::read_to_string(common::corpus_dir().join("files").join(f)).unwrap()
        }
        (None, None, Some(j), None) => j.to_string(),
        (None, None, None, Some(base)) => from_base(case, base),
        _ => panic!("{}: give exactly one of body, file, json, base", case.name),
    };
    if let Some(n) = case.pad_to {
        let pad = n.checked_sub(text.len()).unwrap();
        text.push_str(&" ".repeat(pad));
    }
    if case.sns {
        let arn = "arn:aws:sns:eu-west-1:123456789012:fleet-events";
        text = SnsEnvelope::new("m-1", arn, text, MessageAttributes::new()).to_json();
    }
    text
}

/// What is wrong with the outcome of one case, if anything.
fn check(case: &Case, outcome: Result<impl std::fmt::Debug, SchemaError>) -> Option<String> {
    let e = match outcome {
        Ok(v) => return Some(format!("accepted: {v:?}")),
        Err(e) => e,
    };
    let report = e.report();
    if e.label() != case.label {
        return Some(format!(
            "label {} instead of {}: {report}",
            e.label(),
            case.label
        ));
    }
    if let Some(field) = &case.field {
        if e.field() != Some(field.as_str()) || !report.contains(field.as_str()) {
            return Some(format!(
                "field {:?} instead of {field}: {report}",
                e.field()
            ));
        }
    }
    if let Some(words) = &case.mentions {
        if !report.contains(words.as_str()) {
            return Some(format!("does not mention {words:?}: {report}"));
        }
    }
    let handler_error = HandlerError::from(e);
    // The dead-letter reason's message is the cause text: the whole report, each level once.
    if handler_error.label() != case.label || handler_error.cause_text() != report {
        return Some(format!(
            "handler error {handler_error} lost the label or the reason"
        ));
    }
    None
}

#[test]
fn every_bad_input_is_refused_with_its_label_and_field() {
    let cases = cases();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let outcome = std::panic::catch_unwind(|| decode(&body(case)));
            match outcome {
                Ok(outcome) => check(case, outcome),
                Err(_) => Some("panicked".to_owned()),
            }
            .map(|why| format!("{}: {why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_label() {
    let labels: std::collections::BTreeSet<String> = cases().into_iter().map(|c| c.label).collect();
    for label in [
        "oversize",
        "bad_envelope",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "invalid_field",
        "unknown_type",
        "unsupported_version",
    ] {
        assert!(labels.contains(label), "no case for {label}");
    }
}

#[test]
fn unchanged_bases_decode() {
    // Guards the corpus itself: a case fails because of its edit, not because its base is bad.
    let bases: std::collections::BTreeSet<String> =
        cases().into_iter().filter_map(|c| c.base).collect();
    for base in bases {
        assert!(decode(&common::fixture(&base)).is_ok(), "{base}");
    }
}
