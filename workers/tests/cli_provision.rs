//! `fleet provision` against moto_server: the first run creates everything, the second reports
//! no changes, and a changed declaration is applied as an update. Tables included.

#![allow(clippy::unwrap_used)]

mod common;

use fleet_bus::scenarios::unique_name;

fn provision(topology: &std::path::Path) -> (bool, String, String) {
    let out = common::fleet(&["provision", "--topology", topology.to_str().unwrap()]);
    (out.ok, out.stdout, out.stderr)
}

fn topology(prefix: &str, visibility: u32) -> String {
    format!(
        r#"
[[topic]]
name = "{prefix}-events"
[[topic.subscription]]
queue = "{prefix}-orders"
raw_delivery = true
filter_policy = {{ type = [{{ prefix = "order." }}] }}
[[topic.subscription]]
queue = "{prefix}-audit"

[[queue]]
name = "{prefix}-orders"
visibility_timeout_seconds = {visibility}
dead_letter = {{ queue = "{prefix}-orders-dlq", max_receive_count = 4 }}

[[queue]]
name = "{prefix}-audit"

[[table]]
name = "{prefix}-table"
partition_key = "PK"
sort_key = "SK"
ttl_attribute = "expiration"
[[table.index]]
name = "GSI1"
partition_key = "GSI1PK"
sort_key = "GSI1SK"
"#
    )
}

#[test]
fn provisioning_twice_changes_nothing_the_second_time() {
    let dir = std::env::temp_dir().join(unique_name("fleet-provision"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topology.toml");
    let prefix = unique_name("p");
    std::fs::write(&file, topology(&prefix, 30)).unwrap();

    let (ok, first, err) = provision(&file);
    assert!(ok, "first run failed: {err}");
    assert!(
        first.contains(&format!("created    queue {prefix}-orders-dlq")),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "created    subscription {prefix}-events -> {prefix}-orders"
        )),
        "{first}"
    );
    assert!(
        first.contains(&format!("created    table {prefix}-table")),
        "{first}"
    );
    assert!(first.contains("changes applied"), "{first}");

    let (ok, second, err) = provision(&file);
    assert!(ok, "second run failed: {err}");
    assert!(second.ends_with("7 resources, no changes\n"), "{second}");
    assert!(
        !second.contains("created") && !second.contains("updated"),
        "{second}"
    );

    std::fs::write(&file, topology(&prefix, 45)).unwrap();
    let (ok, third, err) = provision(&file);
    assert!(ok, "third run failed: {err}");
    assert!(
        third.contains(&format!(
            "updated    queue {prefix}-orders (VisibilityTimeout)"
        )),
        "{third}"
    );
    let (_, fourth, _) = provision(&file);
    assert!(fourth.ends_with("no changes\n"), "{fourth}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn provisioning_reports_an_invalid_topology() {
    let dir = std::env::temp_dir().join(unique_name("fleet-provision-bad"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topology.toml");
    std::fs::write(
        &file,
        "[[queue]]\nname = \"q\"\nvisibility_timeout_seconds = 99999\n",
    )
    .unwrap();
    let (ok, _, err) = provision(&file);
    assert!(!ok);
    assert!(err.contains("visibility timeout exceeds 12 hours"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn provisioning_refuses_a_visibility_the_consumer_refuses() {
    let dir = std::env::temp_dir().join(unique_name("fleet-provision-short"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topology.toml");
    let queue = unique_name("short");
    std::fs::write(
        &file,
        format!("[[queue]]\nname = \"{queue}\"\nvisibility_timeout_seconds = 1\n"),
    )
    .unwrap();
    let (ok, out, err) = provision(&file);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!(
            "queue {queue}: a visibility timeout of 1 s is shorter than the 2 s the consumer needs"
        )),
        "{err}"
    );
    assert!(!out.contains("created"), "nothing is created: {out}");
    let _ = std::fs::remove_dir_all(dir);
}
