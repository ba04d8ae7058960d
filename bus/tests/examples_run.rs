//! Every example of the workspace (`bus/examples`, `lambda/examples`) runs and prints what it says
//! it does (STYLE rule 9), and the README's snippet is the `worker` example's code, verbatim.
//!
//! The examples are built with the `cargo` that runs these tests (a no-op after `cargo test`, which
//! builds them too), then each one runs with a time limit; its exit code and output are checked
//! against [`EXPECTED`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an example may run (it should take about a second).
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// What an example must print: lines that must appear, and counts in its report line.
struct Expected {
    lines: &'static [&'static str],
    /// `(label, n)`: the output says `label n` (or `label: n`, `label=n`).
    counts: &'static [(&'static str, u64)],
}

/// Every example of the workspace, as `crate directory/example`, and what it must print.
const EXPECTED: &[(&str, Expected)] = &[
    (
        "bus/worker",
        Expected {
            lines: &[
                "hello, Ada (attempt 1 of 3)",
                "hello, Grace (attempt 1 of 3)",
                "hello, Linus (attempt 1 of 3)",
                "dead letter \"R2-D2\": not_a_name (\"R2-D2\" is not a name)",
            ],
            counts: &[("received", 4), ("acked", 3), ("dead-lettered", 1)],
        },
    ),
    (
        "lambda/sqs_event",
        Expected {
            lines: &[
                "hello, Ada (attempt 1 of 3)",
                "4 records: 1 acked, 1 retried, 2 dead-lettered, 0 dead-letter sends failed, 0 held back",
                r#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#,
                r#"dead letter "R2-D2": not_a_name ("R2-D2" is not a name)"#,
                r#"dead letter "later:Linus": not_yet (gave up after attempt 3 of 3: Linus is not in yet)"#,
            ],
            counts: &[],
        },
    ),
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every example file of the workspace, as `crate directory/name`.
fn example_names() -> Vec<String> {
    let root = manifest_dir().join("..");
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(files) = std::fs::read_dir(dir.join("examples")) else {
            continue;
        };
        let krate = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("Cargo.toml").exists() {
            continue;
        }
        names.extend(files.filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "rs")
                .then(|| Some(format!("{krate}/{}", path.file_stem()?.to_str()?)))?
        }));
    }
    names.sort();
    names
}

/// Variables cargo sets for this test and would pass on to the build scripts of the nested
/// build (`ring`'s tracks `CARGO_MANIFEST_DIR`), which would then rebuild half the dependencies.
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

/// Builds the workspace's examples; returns each one's executable by name.
fn build_examples() -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if TEST_ONLY_VARS.iter().any(|v| key_text.starts_with(v)) {
            command.env_remove(&key);
        }
    }
    let out = command
        // The whole workspace, as `./scripts/test` builds it: the same features, so nothing is
        // built twice.
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
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "example")
        })
        .filter_map(|m| {
            let krate = Path::new(m["manifest_path"].as_str()?)
                .parent()?
                .file_name()?
                .to_str()?
                .to_owned();
            let name = format!("{krate}/{}", m["target"]["name"].as_str()?);
            Some((name, PathBuf::from(m["executable"].as_str()?)))
        })
        .collect()
}

/// Runs `exe`; returns its exit code and stdout, or fails after [`TIME_LIMIT`].
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
        stdout.read_to_string(&mut text).map(|_| text)
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

/// The number after `label` in `text` (`label 4`, `label: 4`, `label=4`), wherever it appears
/// first followed by a number.
fn count_after(text: &str, label: &str) -> Option<u64> {
    text.match_indices(label).find_map(|(at, _)| {
        let rest = text[at + label.len()..].trim_start_matches([' ', ':', '=']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
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
        names.iter().collect::<Vec<_>>(),
        "the examples built are the ones in the crates' examples/ directories"
    );
    for (name, expected) in EXPECTED {
        let exe = built
            .get(*name)
            .unwrap_or_else(|| panic!("{name} was not built"));
        let (code, out) = run_with_time_limit(exe);
        assert_eq!(code, Some(0), "example {name} failed; it printed:\n{out}");
        for line in expected.lines {
            assert!(
                out.lines().any(|l| l == *line),
                "example {name} did not print {line:?}; it printed:\n{out}"
            );
        }
        for (label, n) in expected.counts {
            assert_eq!(
                count_after(&out, label),
                Some(*n),
                "example {name}: {label}; it printed:\n{out}"
            );
        }
    }
}

#[test]
fn counts_are_read_whatever_the_separator() {
    let line = "received 4 | acked: 3 | dead-lettered=1 | settle failed 0";
    assert_eq!(count_after(line, "received"), Some(4));
    assert_eq!(count_after(line, "acked"), Some(3));
    assert_eq!(count_after(line, "dead-lettered"), Some(1));
    assert_eq!(count_after(line, "released"), None);
}

/// The README's Rust block under `heading`, without its fences.
fn readme_snippet(heading: &str) -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("../README.md")).unwrap();
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let block = section.split_once("```rust\n").unwrap().1;
    block.split_once("```").unwrap().0.to_owned()
}

#[test]
fn the_readme_snippet_is_the_worker_example_verbatim() {
    let source = std::fs::read_to_string(manifest_dir().join("examples/worker.rs")).unwrap();
    let marked = source
        .split_once("// README begin\n")
        .unwrap()
        .1
        .split_once("    // README end")
        .unwrap()
        .0;
    let code: String = marked
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let snippet = readme_snippet("## The consumer engine in 20 lines");
    assert_eq!(
        snippet, code,
        "README snippet and bus/examples/worker.rs differ"
    );
    assert!(snippet.lines().count() <= 20);
}
