//! `fleet-bench --smoke` (what `scripts/bench --smoke` runs) prints every row of its table, and
//! every consumer's counts add up: the command cannot rot unnoticed. No speed is asserted.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Variables cargo sets for this test only, which must not reach the inner `cargo build`.
const TEST_ONLY_VARS: &[&str] = &[
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

/// Builds `fleet` beside `fleet-bench`: the whole workspace's binaries with its examples, as
/// `cargo test` builds them. `--examples` brings in the dev-dependencies and so their features
/// (`fail/failpoints` among them): with `--bins` alone cargo would relink `target/debug/fleet`
/// without failpoints, and the failpoint and chaos tests that run it after this one would fail.
fn build_fleet() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if TEST_ONLY_VARS.iter().any(|v| key_text.starts_with(v)) {
            command.env_remove(&key);
        }
    }
    command.args(["build", "--workspace", "--bins", "--examples"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command
        .current_dir(repo())
        .stdout(Stdio::null())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the fleet binary failed");
}

fn check_node() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node 20 or newer and npm, then run ./scripts/test (it runs npm ci --prefix benches/node)"
    );
    assert!(
        repo()
            .join("benches/node/node_modules/sqs-consumer/package.json")
            .exists(),
        "sqs-consumer is not installed: run ./scripts/test (or npm ci --prefix benches/node)"
    );
}

/// The table's rows as (subject, received / handled, result) by their cells.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| section"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn every_row_of_the_smoke_run_is_there_and_its_counts_add_up() {
    check_node();
    build_fleet();
    let out = Command::new(env!("CARGO_BIN_EXE_fleet-bench"))
        .arg("--smoke")
        .stderr(Stdio::inherit())
        .output()
        .expect("run fleet-bench --smoke");
    let stdout = String::from_utf8(out.stdout).unwrap();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "fleet-bench --smoke failed:\n{stdout}"
    );
    let rows = rows(&stdout);
    let expected = [
        ("embedded", "bare channel loop, 1000 msgs", 1000),
        ("embedded", "spawn per message, 1000 msgs", 1000),
        ("embedded", "Fleet Consumer, defaults, 1000 msgs", 1000),
        ("embedded", "bare channel loop, 2000 msgs", 2000),
        ("embedded", "spawn per message, 2000 msgs", 2000),
        ("embedded", "Fleet Consumer, defaults, 2000 msgs", 2000),
        ("latency", "spawn per message, publish → handler", 100),
        (
            "latency",
            "Fleet Consumer, defaults, publish → handler",
            100,
        ),
        ("memory", "fleet run, three workers", 0),
        ("memory", "drain of a 2000-message embedded backlog", 2000),
        ("sqs (moto)", "Fleet, defaults: requests", 30),
        ("sqs (moto)", "Fleet, defaults: CPU", 30),
        ("sqs (moto)", "Fleet, defaults: peak RSS", 30),
        ("sqs (moto)", "handleMessage: requests", 30),
        ("sqs (moto)", "handleMessage: CPU", 30),
        ("sqs (moto)", "handleMessage: peak RSS", 30),
        ("sqs (moto)", "handleMessageBatch: requests", 30),
        ("sqs (moto)", "handleMessageBatch: CPU", 30),
        ("sqs (moto)", "handleMessageBatch: peak RSS", 30),
    ];
    assert_eq!(rows.len(), expected.len(), "{stdout}");
    for (section, subject, n) in expected {
        let row = rows
            .iter()
            .find(|r| r[0] == section && r[1].contains(subject))
            .unwrap_or_else(|| panic!("no {section} row for {subject:?} in:\n{stdout}"));
        assert!(!row[3].starts_with("failed"), "{row:?}");
        assert!(!row[3].is_empty(), "{row:?}");
        let counts = if n == 0 {
            String::new()
        } else {
            format!("{n} / {n}")
        };
        assert_eq!(row[2], counts, "received / handled of {row:?}");
    }
    // Every goal of the issue has its verdict, met or missed (never its speed asserted).
    let with_goal = rows.iter().filter(|r| !r[5].is_empty()).count();
    let judged = rows
        .iter()
        .filter(|r| r[6] == "met" || r[6].starts_with("missed by"))
        .count();
    assert_eq!((with_goal, judged), (7, 7), "{stdout}");
}
