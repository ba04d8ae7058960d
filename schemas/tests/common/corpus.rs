//! The corpus of inputs in `tests/corpus`: `cases.ndjson` (bad inputs, each with the `label` it
//! is refused with) and `accepted.ndjson` (inputs that must decode, each optionally `like` the
//! fixture it must decode to), one case per line.
//!
//! A case gives its body in one of three ways: `body` (the text), `file` (a file under
//! `tests/corpus/files`, for bytes that are awkward inside JSON: NUL, BOM, bad escapes, deep
//! nesting), `json` (a JSON value, sent compactly), or `base` (a fixture) changed by `raw_replace`
//! (a text replacement), `truncate` / `truncate_end` (bytes kept / cut), or by JSON-pointer edits:
//! `set`, `remove`, `fill` (a string of n copies of a character), `repeat` (an array of n copies of
//! its first element), `keys` (an object of n keys). Then `pad_to` appends spaces up to n bytes and
//! `sns` wraps the body in an SNS notification.

use std::collections::BTreeMap;
use std::fs;

use fleet_bus::MessageAttributes;
use fleet_bus::sns::SnsEnvelope;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub label: Option<String>,
    pub like: Option<String>,
    pub field: Option<String>,
    pub mentions: Option<String>,
    body: Option<String>,
    file: Option<String>,
    json: Option<Value>,
    pub base: Option<String>,
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

/// The bad inputs.
pub fn cases() -> Vec<Case> {
    read("cases.ndjson")
}

/// The inputs that must decode.
pub fn accepted() -> Vec<Case> {
    read("accepted.ndjson")
}

fn read(file: &str) -> Vec<Case> {
    let text = fs::read_to_string(super::corpus_dir().join(file)).unwrap();
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
    let mut text = super::fixture(base);
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

/// The body a case describes.
pub fn body(case: &Case) -> String {
    let mut text = match (&case.body, &case.file, &case.json, &case.base) {
        (Some(b), None, None, None) => b.clone(),
        (None, Some(f), None, None) => {
            fs::read_to_string(super::corpus_dir().join("files").join(f)).unwrap()
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
