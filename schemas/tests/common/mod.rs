//! Helpers shared by the schema tests: the fixtures, and (for the consumer tests) an embedded bus
//! with a queue and its dead-letter queue, a consumer running in the background, and a metrics
//! recorder. The consumer helpers follow `bus/tests/common`.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

pub mod bus;
pub mod corpus;
pub mod recorder;

use std::fs;
use std::path::{Path, PathBuf};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A fixture's text.
pub fn fixture(name: &str) -> String {
    fs::read_to_string(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fixture file names, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}
