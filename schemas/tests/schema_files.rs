//! The committed JSON Schemas in `schemas/json` are what the code generates.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use fleet_schemas::{json_schemas, write_json_schemas};

const REGENERATE: &str = "cargo run -p fleet-schemas --bin export-schemas";

fn files_in(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn json_schemas_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let committed = if dir.is_dir() {
        files_in(&dir)
    } else {
        BTreeMap::new()
    };
    let generated: BTreeMap<String, String> = json_schemas().into_iter().collect();
    let mut stale: Vec<String> = generated
        .iter()
        .filter(|(name, text)| committed.get(*name) != Some(*text))
        .map(|(name, _)| format!("{name} differs or is missing"))
        .collect();
    stale.extend(
        committed
            .keys()
            .filter(|name| !generated.contains_key(*name))
            .map(|name| format!("{name} is no longer generated")),
    );
    assert!(
        stale.is_empty(),
        "schemas/json is out of date ({}); regenerate it with `{REGENERATE}` and commit the result",
        stale.join(", ")
    );
}

#[test]
fn writing_replaces_stale_files_and_keeps_others() {
    let dir = std::env::temp_dir().join(format!("fleet-schemas-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("order.placed.v1.json"), "{}").unwrap();
    fs::write(dir.join("notes.txt"), "kept").unwrap();
    let written = write_json_schemas(&dir).unwrap();
    assert_eq!(written.len(), json_schemas().len());
    let files = files_in(&dir);
    assert!(
        !files.contains_key("order.placed.v1.json"),
        "stale schema removed"
    );
    assert!(files.contains_key("header.json"));
    assert!(
        dir.join("notes.txt").exists(),
        "only *.json files are managed"
    );
    for (_, text) in files {
        assert!(text.ends_with("}\n"));
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }
    fs::remove_dir_all(&dir).unwrap();
}
