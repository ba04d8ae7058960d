//! Every example of `fleet-lambda` runs and prints what it says it does (STYLE rule 9), as
//! `bus/tests/examples_run.rs` checks `fleet-bus`'s: built with the `cargo` that runs these tests
//! (the whole workspace's examples, as `./scripts/test` builds them, so nothing is built twice),
//! then run with a time limit; exit code and output checked against [`EXPECTED`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an example may run (it should take well under a second).
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Every example, and lines it must print.
const EXPECTED: &[(&str, &[&str])] = &[(
    "sqs_event",
    &[
        "hello, Ada (attempt 1 of 3)",
        "4 records: 1 acked, 1 retried, 2 dead-lettered, 0 dead-letter sends failed, 0 held back",
        r#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#,
        r#"dead letter "R2-D2": not_a_name ("R2-D2" is not a name)"#,
        r#"dead letter "later:Linus": not_yet (gave up after attempt 3 of 3: Linus is not in yet)"#,
    ],
)];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(manifest_dir().join("examples"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

/// Variables cargo sets for this test that would make the nested build rebuild dependencies
/// (their build scripts track some of them).
const TEST_ONLY_VARS: [&str; 9] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// Builds the workspace's examples; returns this crate's, by name.
fn build_examples() -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let text = key.to_string_lossy();
        if TEST_ONLY_VARS.iter().any(|v| text.starts_with(v)) {
            command.env_remove(&key);
        }
    }
    let out = command
        .args([
            "build",
            "--workspace",
            "--examples",
            "--message-format=json",
        ])
        .current_dir(manifest_dir())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build --examples");
    assert!(out.status.success(), "building the examples failed");
    let manifest = manifest_dir().join("Cargo.toml");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(&manifest))
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "example")
        })
        .filter_map(|m| {
            let name = m["target"]["name"].as_str()?.to_owned();
            Some((name, PathBuf::from(m["executable"].as_str()?)))
        })
        .collect()
}

/// Runs `exe`; its exit code and stdout, or a failure after [`TIME_LIMIT`].
fn run_with_time_limit(exe: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(exe)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{} still running after {TIME_LIMIT:?}", exe.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), reader.join().unwrap().unwrap())
}

#[test]
fn every_example_runs_in_time_and_prints_what_it_should() {
    let names = example_names();
    let listed: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, listed,
        "every example needs its expected output here"
    );
    let built = build_examples();
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        names.iter().collect::<Vec<_>>()
    );
    for (name, lines) in EXPECTED {
        let (code, out) = run_with_time_limit(&built[*name]);
        assert_eq!(code, Some(0), "example {name} failed; it printed:\n{out}");
        for line in *lines {
            assert!(
                out.lines().any(|l| l == *line),
                "example {name} did not print {line:?}; it printed:\n{out}"
            );
        }
    }
}
