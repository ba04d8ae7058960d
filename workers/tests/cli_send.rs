//! `fleet send` and `fleet publish` end to end against moto: a 1,000-line NDJSON file lands in
//! the queue as Fleet envelopes with their attributes; a file with a bad line sends nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use fleet_bus::scenarios::unique_name;
use fleet_bus::sns::FilterScope;
use fleet_bus::{
    AttributeValue, Declaration, QueueDecl, ReceiveRequest, SubscriptionDecl, TopicDecl, Transport,
};
use serde_json::{Value, json};

/// `{type, payload}` of every v2 fixture of fleet-schemas: one valid event of each type.
fn samples() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/tests/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".v2.json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            out.push(json!({"type": v["type"], "payload": v["payload"]}));
        }
    }
    out.sort_by_key(|v| v["type"].as_str().unwrap().to_owned());
    assert!(out.len() >= 7, "one sample per type: {out:?}");
    out
}

fn write_lines(name: &str, lines: &[String]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_line_file_is_sent_as_fleet_envelopes() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("send");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let samples = samples();
    let lines: Vec<String> = (0..1000)
        .map(|i| samples[i % samples.len()].to_string())
        .collect();
    let file = write_lines("send", &lines);

    let out = common::fleet(&[
        "send",
        "--queue",
        &queue,
        "--file",
        file.to_str().unwrap(),
        "--producer",
        "bulk-import",
    ]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("sent 1000 of 1000 event(s) to {queue}")),
        "{}",
        out.stdout
    );
    let q = t.queue(&queue).await.unwrap();
    assert_eq!(q.admin().describe().await.unwrap().counts.visible, 1000);

    let sample = q
        .queue()
        .receive(&ReceiveRequest::new(10, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(sample.len(), 10);
    for m in &sample {
        let env = fleet_schemas::decode(&m.body).expect("a consumer decodes what fleet send sent");
        assert_eq!(env.header.producer, "bulk-import");
        assert_eq!(
            m.attributes.get("type").and_then(AttributeValue::as_str),
            Some(env.header.event_type.as_str())
        );
        assert_eq!(
            m.attributes.get("version").and_then(AttributeValue::as_str),
            Some("2")
        );
    }
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_an_invalid_line_sends_nothing_and_names_the_line() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("send-bad");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let good = samples()[0].to_string();
    let lines = vec![
        good.clone(),
        good.clone(),
        r#"{"type": "order.paid", "payload": {"order_id": "o-1"}}"#.to_owned(),
        good,
    ];
    let file = write_lines("send-bad", &lines);
    let out = common::fleet(&["send", "--queue", &queue, "--file", file.to_str().unwrap()]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("line 3: missing_field"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing sent"), "{}", out.stderr);
    assert_eq!(
        t.queue(&queue)
            .await
            .unwrap()
            .admin()
            .describe()
            .await
            .unwrap()
            .counts
            .visible,
        0
    );

    let out = common::fleet(&[
        "send",
        "--queue",
        &queue,
        "--file",
        file.to_str().unwrap(),
        "--skip-invalid",
    ]);
    assert!(!out.ok, "an invalid line still fails the command");
    assert_eq!(out.code, Some(1), "documented: 1 when a line was skipped");
    assert!(
        out.stdout.contains(&format!(
            "sent 3 of 3 event(s) to {queue}, skipped 1 invalid line(s)"
        )),
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_published_event_reaches_the_subscription_that_filters_for_it() {
    let t = fleet_tests::moto::transport().await;
    let (orders, emails) = (unique_name("pub-orders"), unique_name("pub-emails"));
    let topic = TopicDecl::new(unique_name("pub"))
        .subscribe(SubscriptionDecl::new(&orders).raw().filter(
            json!({"type": [{"prefix": "order."}]}),
            FilterScope::MessageAttributes,
        ))
        .subscribe(SubscriptionDecl::new(&emails).raw().filter(
            json!({"type": [{"prefix": "email."}]}),
            FilterScope::MessageAttributes,
        ));
    let queues = vec![QueueDecl::new(&orders), QueueDecl::new(&emails)];
    fleet_bus::provision(
        &t,
        &fleet_bus::Topology {
            queues,
            topics: vec![topic.clone()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let event = samples()
        .into_iter()
        .find(|s| s["type"] == "order.paid")
        .unwrap()
        .to_string();
    let out = common::fleet(&["publish", "--topic", &topic.name, "--event", &event]);
    assert!(out.ok, "{}", out.stderr);
    let got = t
        .queue(&orders)
        .await
        .unwrap()
        .queue()
        .receive(&ReceiveRequest::new(10, Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        fleet_schemas::decode(&got[0].body)
            .unwrap()
            .header
            .event_type,
        "order.paid"
    );
    assert_eq!(
        t.queue(&emails)
            .await
            .unwrap()
            .admin()
            .describe()
            .await
            .unwrap()
            .counts
            .visible,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_user_wrote_is_sent_with_unknown_fields_and_its_version() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("send-as-written");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let written = json!({
        "type": "analytics.tracked",
        "version": 1,
        "trace_parent": "00-abc-01",
        "payload": {"event": "signup", "user_id": "u1", "properties": {}, "timestamp": "2026-11-26T15:00:00Z", "campaign": "spring"}
    });
    let out = common::fleet(&["send", "--queue", &queue, "--event", &written.to_string()]);
    assert!(out.ok, "{}", out.stderr);
    let got = t
        .queue(&queue)
        .await
        .unwrap()
        .queue()
        .receive(&ReceiveRequest::new(10, Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        body["version"], 1,
        "a version-1 event goes out as version 1"
    );
    assert_eq!(
        body["trace_parent"], "00-abc-01",
        "unknown header fields kept"
    );
    assert_eq!(
        body["payload"], written["payload"],
        "the payload as written"
    );
    assert_eq!(
        body["producer"], "fleet-cli",
        "missing header fields filled in"
    );
    assert!(body["id"].is_string() && body["occurred_at"].is_string());
    assert_eq!(
        got[0]
            .attributes
            .get("version")
            .and_then(AttributeValue::as_str),
        Some("1"),
        "the version attribute says what the body says"
    );
    assert_eq!(
        got[0]
            .attributes
            .get("type")
            .and_then(AttributeValue::as_str),
        Some("analytics.tracked")
    );
    fleet_schemas::decode(&got[0].body).expect("a consumer decodes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_names_the_line() {
    let t = fleet_tests::moto::transport().await;
    let queue = format!("{}.fifo", unique_name("send-fail"));
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let good = samples()[0].to_string();
    // Line 2 is blank: the events are lines 1, 3 and 4.
    let file = write_lines(
        "send-fail",
        &[good.clone(), String::new(), good.clone(), good],
    );
    // A FIFO queue refuses messages without a group (no --group here).
    let out = common::fleet(&["send", "--queue", &queue, "--file", file.to_str().unwrap()]);
    assert!(!out.ok);
    for line in [1, 3, 4] {
        assert!(
            out.stderr.contains(&format!("line {line} not sent: ")),
            "{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("event "), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("sent 0 of 3 event(s) to {queue}")),
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_utf8_byte_is_reported_by_its_line() {
    let t = fleet_tests::moto::transport().await;
    let queue = unique_name("send-utf8");
    t.declare(&Declaration::Queue(&QueueDecl::new(&queue)))
        .await
        .unwrap();
    let good = samples()[0].to_string();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    let mut bad = good.clone().into_bytes();
    bad[5] = 0xff;
    bytes.extend_from_slice(&bad);
    bytes.push(b'\n');
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    let dir = std::env::temp_dir().join(unique_name("send-utf8"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.ndjson");
    std::fs::write(&file, bytes).unwrap();

    let out = common::fleet(&["send", "--queue", &queue, "--file", file.to_str().unwrap()]);
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("line 2: invalid_utf8: byte 6 is not UTF-8"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing sent"), "{}", out.stderr);
    let out = common::fleet(&[
        "send",
        "--queue",
        &queue,
        "--file",
        file.to_str().unwrap(),
        "--skip-invalid",
    ]);
    assert!(
        out.stdout.contains(&format!(
            "sent 2 of 2 event(s) to {queue}, skipped 1 invalid line(s)"
        )),
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(dir);
}
