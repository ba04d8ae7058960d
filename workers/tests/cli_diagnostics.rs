//! What `fleet` tells the operator on stderr: what to set when AWS settings are missing, logs
//! without colour codes off a terminal, and nothing but JSON lines in JSON log mode.

#![allow(clippy::unwrap_used)]

mod common;

use fleet_bus::scenarios::unique_name;
use fleet_bus::{Declaration, QueueDecl, Transport};

/// The environment of a machine with no AWS settings at all (nothing found in files, no
/// instance metadata).
const NO_AWS: &[(&str, Option<&str>)] = &[
    ("AWS_REGION", None),
    ("AWS_DEFAULT_REGION", None),
    ("AWS_ACCESS_KEY_ID", None),
    ("AWS_SECRET_ACCESS_KEY", None),
    ("AWS_SESSION_TOKEN", None),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", None),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", None),
    ("AWS_CONFIG_FILE", Some("/dev/null")),
    ("AWS_SHARED_CREDENTIALS_FILE", Some("/dev/null")),
    ("AWS_EC2_METADATA_DISABLED", Some("true")),
];

fn without(names: &[&str]) -> Vec<(&'static str, Option<&'static str>)> {
    NO_AWS
        .iter()
        .filter(|(n, _)| !names.contains(n))
        .copied()
        .collect()
}

#[test]
fn missing_region_or_credentials_say_what_to_set() {
    let no_region = common::fleet_with("text", NO_AWS, &["dlq", "inspect", "--queue", "q"]);
    let out = &no_region;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("no AWS region: set AWS_REGION"),
        "{}",
        out.stderr
    );
    // The region is set from here on: credentials are what is missing.
    let env = without(&["AWS_REGION"]);
    let out = common::fleet_with("text", &env, &["send", "--queue", "q", "--event", "{}"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("no AWS credentials: set AWS_PROFILE")
            && out.stderr.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        out.stderr
    );
    for out in [&no_region, &out] {
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
        for dump in [
            "NetworkError",
            "missing signing region",
            "DispatchFailure",
            "{ ",
        ] {
            assert!(!out.stderr.contains(dump), "{}", out.stderr);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_no_colour_codes_off_a_terminal() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("colour");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    // stderr is a pipe here, as when logs are written to a file.
    let out = common::fleet_with(
        "text",
        &[("FLEET_LOG", Some("debug"))],
        &["dlq", "inspect", "--queue", &queue, "--dlq", &queue],
    );
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.lines().count() > 3, "debug logs: {}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_mode_writes_only_json_lines_to_stderr() {
    let t = fleet_tests::moto::transport().await;
    let fifo = format!("{}.fifo", unique_name("json-log"));
    t.declare(&Declaration::Queue(&QueueDecl::new(&fifo)))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(unique_name("json-log"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.ndjson");
    let good = r#"{"type": "analytics.tracked", "payload": {"name": "signup", "subject": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z"}}"#;
    std::fs::write(&file, format!("{good}\nnot json\n{good}\n")).unwrap();
    let file = file.to_str().unwrap();
    let runs = [
        // invalid lines, nothing sent
        vec!["send", "--queue", &fifo, "--file", file],
        // skipped lines, then a FIFO queue refusing messages without a group
        vec!["send", "--queue", &fifo, "--file", file, "--skip-invalid"],
        // a command that fails
        vec!["dlq", "inspect", "--queue", "no-such-queue-anywhere"],
    ];
    for args in runs {
        let out = common::fleet_with("json", &[], &args);
        assert!(!out.ok, "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        for line in out.stderr.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {line}"));
            assert!(
                v["level"].is_string() && v["message"].is_string(),
                "{args:?}: {line}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
