//! The corpus (`tests/corpus`, format in `common/corpus.rs`): every bad input of `cases.ndjson`
//! is refused with the expected label, names the field where one is at fault, and never panics;
//! every input of `accepted.ndjson` decodes, like its fixture where it names one.

#![allow(clippy::unwrap_used)]

mod common;

use common::corpus::{Case, accepted, body, cases};
use fleet_bus::HandlerError;
use fleet_schemas::{SchemaError, decode};

/// What is wrong with the outcome of one case, if anything.
fn check(case: &Case, outcome: Result<impl std::fmt::Debug, SchemaError>) -> Option<String> {
    let e = match outcome {
        Ok(v) => return Some(format!("accepted: {v:?}")),
        Err(e) => e,
    };
    let report = e.report();
    let Some(label) = &case.label else {
        return Some("a refused case needs its label".to_owned());
    };
    if e.label() != label {
        return Some(format!(
            "label {} instead of {}: {report}",
            e.label(),
            label
        ));
    }
    if let Some(field) = &case.field
        && (e.field() != Some(field.as_str()) || !report.contains(field.as_str()))
    {
        return Some(format!(
            "field {:?} instead of {field}: {report}",
            e.field()
        ));
    }
    if let Some(words) = &case.mentions
        && !report.contains(words.as_str())
    {
        return Some(format!("does not mention {words:?}: {report}"));
    }
    let handler_error = HandlerError::from(e);
    // The dead-letter reason's message is the cause text: the whole report, each level once.
    if handler_error.label() != label || handler_error.cause_text() != report {
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
    let labels: std::collections::BTreeSet<String> =
        cases().into_iter().filter_map(|c| c.label).collect();
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

#[test]
fn accepted_cases_decode_like_their_fixture() {
    let cases = accepted();
    assert!(cases.len() >= 8, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let decoded = match decode(&body(case)) {
                Ok(decoded) => decoded,
                Err(e) => return Some(format!("{}: refused: {}", case.name, e.report())),
            };
            let like = case.like.as_ref()?;
            let expected = decode(&common::fixture(like)).unwrap();
            (decoded != expected).then(|| format!("{}: decodes unlike {like}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
