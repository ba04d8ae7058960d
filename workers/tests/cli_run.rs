//! `fleet run` and `fleet config check` as an operator meets them: a strict configuration with
//! overrides, startup errors that name the resource and the fix before anything is consumed, and
//! a drain on SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use fleet_bus::scenarios::unique_name;

fn config_file(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("fleet-run"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_check_prints_the_effective_configuration_with_its_overrides() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/fleet.toml");
    let out = common::fleet_with(
        "text",
        &[("FLEET__ORDERS__CONSUMER__CONCURRENCY", Some("7"))],
        &["config", "check", "--config", shipped],
    );
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("# orders.consumer.concurrency set by FLEET__ORDERS__CONSUMER__CONCURRENCY"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("concurrency = 7"), "{}", out.stdout);
    assert!(
        out.stdout.contains("events_topic = \"fleet-events\""),
        "{}",
        out.stdout
    );
}

#[test]
fn an_unknown_key_stops_config_check_and_run_naming_the_key() {
    let path = config_file("[orders.consumer]\nconcurency = 4\n");
    for args in [["config", "check"].as_slice(), ["run"].as_slice()] {
        let mut args = args.to_vec();
        args.extend(["--config", path.to_str().unwrap()]);
        let out = common::fleet(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("concurency"), "{}", out.stderr);
    }
}

#[test]
fn a_missing_queue_stops_run_before_anything_is_consumed() {
    let queue = unique_name("absent-orders");
    let path = config_file(&format!(
        "[orders]\nqueue = \"{queue}\"\n[analytics]\nenabled = false\n"
    ));
    let started = std::time::Instant::now();
    let out = common::fleet(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("queue {queue}: does not exist"))
            && out.stderr.contains("fleet provision"),
        "{}",
        out.stderr
    );
    // Not a transient error: the start is not tried again.
    assert!(!out.stderr.contains("trying again"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
