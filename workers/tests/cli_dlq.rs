//! `fleet dlq inspect` and `fleet dlq redrive` end to end against moto: messages a Fleet consumer
//! dead-lettered are listed with their reasons (copies once, notes with their message, escaped
//! for the terminal), then moved back to the source queue by receive, send and delete.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::dlq::{dead_letter, drain, json_lines, put, source_message};
use fleet_bus::consumer::dead_letter::{
    LEGACY_ATTR_ERROR_KIND as ATTR_ERROR_KIND, LEGACY_ATTR_SOURCE_QUEUE as ATTR_SOURCE_QUEUE,
};
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{AttributeValue, Consumer, OutgoingMessage, ReceiveRequest, Transport};
use fleet_tests::fleet::{Running, counts, declare_with_dlq, eventually, quick_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_inspected_and_redriven() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("dlq-cli");
    let dlq = declare_with_dlq(&t, &name, 3, Duration::from_secs(10)).await;
    let q = t.queue(&name).await.unwrap();
    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"order\":{i}}}")).collect();
    for chunk in bodies.chunks(10) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|b| OutgoingMessage::new(b).attribute("tenant", AttributeValue::string("acme")))
            .collect();
        q.sender().send_batch(&batch).await.unwrap();
    }
    let reject = handler_fn(|_d: Delivery| async {
        Err(HandlerError::permanent("schema v3 not deployed yet").with_label("unknown_type"))
    });
    let running = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(reject)
            .config(quick_config()),
    );
    eventually(Duration::from_secs(60), || async {
        counts(&t, &dlq).await.visible == 25
    })
    .await;
    running.stop().await;

    let inspect = common::fleet(&["dlq", "inspect", "--queue", &name, "--max", "100"]);
    assert!(inspect.ok, "{}", inspect.stderr);
    assert!(
        inspect
            .stdout
            .ends_with(&format!("25 of 25 dead letter(s) in {dlq}\n")),
        "{}",
        inspect.stdout
    );
    let three = common::fleet(&["dlq", "inspect", "--queue", &name, "--max", "3"]);
    assert!(
        three
            .stdout
            .ends_with(&format!("3 of 25 dead letter(s) in {dlq}\n")),
        "{}",
        three.stdout
    );
    assert_eq!(
        inspect
            .stdout
            .matches(&format!("unknown_type from {name} after attempt 1"))
            .count(),
        25,
        "{}",
        inspect.stdout
    );
    assert!(inspect.stdout.contains("schema v3 not deployed yet"));
    let json = common::fleet(&["dlq", "inspect", "--queue", &name, "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["reason"]["kind"], "unknown_type");
    assert_eq!(
        counts(&t, &dlq).await.visible,
        25,
        "inspect leaves the messages where they are"
    );

    // Also in the DLQ: two large messages of this queue (together over one batch's 1 MiB) and one
    // that Fleet dead-lettered from another queue sharing the DLQ.
    let d = t.queue(&dlq).await.unwrap();
    let big = || {
        OutgoingMessage::new("x".repeat(600_000))
            .attribute(ATTR_SOURCE_QUEUE, AttributeValue::string(&name))
    };
    d.sender().send_batch(&[big()]).await.unwrap();
    d.sender().send_batch(&[big()]).await.unwrap();
    let foreign = OutgoingMessage::new("not ours")
        .attribute(ATTR_ERROR_KIND, AttributeValue::string("x"))
        .attribute(ATTR_SOURCE_QUEUE, AttributeValue::string("another-queue"));
    d.sender().send(foreign).await.unwrap();

    let redrive = common::fleet(&["dlq", "redrive", "--queue", &name]);
    assert!(redrive.ok, "{}", redrive.stderr);
    assert!(
        !redrive.stderr.contains("StartMessageMoveTask"),
        "the default is receive, send and delete: {}",
        redrive.stderr
    );
    assert!(
        redrive
            .stdout
            .contains(&format!("moved 27 dead letter(s) from {dlq} to {name}")),
        "{}",
        redrive.stdout
    );
    assert!(
        redrive.stdout.contains(&format!(
            "left 1 dead letter(s) recorded from another-queue: not from {name} (--force moves them)"
        )),
        "{}\n{}",
        redrive.stdout,
        redrive.stderr
    );
    assert_eq!(
        counts(&t, &dlq).await.visible,
        1,
        "only the other queue's message stays"
    );
    let mut back = Vec::new();
    while back.len() < 27 {
        let got = q
            .queue()
            .receive(
                &ReceiveRequest::new(10, Duration::from_secs(1))
                    .visibility(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        assert!(
            !got.is_empty(),
            "only {} of 25 back in the source queue",
            back.len()
        );
        back.extend(got);
    }
    let got_bodies: BTreeSet<String> = back
        .iter()
        .filter(|m| m.body.len() < 1000)
        .map(|m| m.body.clone())
        .collect();
    assert_eq!(got_bodies, bodies.into_iter().collect());
    assert_eq!(back.iter().filter(|m| m.body.len() == 600_000).count(), 2);
    for m in back.iter().filter(|m| m.body.len() < 1000) {
        assert_eq!(
            m.attributes.get("tenant").and_then(AttributeValue::as_str),
            Some("acme"),
            "own attributes kept"
        );
        assert!(
            m.attributes.keys().all(|k| !k.starts_with("fleet.")),
            "reason attributes dropped: {:?}",
            m.attributes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_without_a_reason_is_not_said_to_be_moved_after_the_dlqs_receive_count() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("dlq-bare");
    let dlq = declare_with_dlq(&t, &name, 5, Duration::from_secs(10)).await;
    put(&t, &dlq, &[OutgoingMessage::new("{\"bare\":true}")]).await;
    for _ in 0..2 {
        assert!(common::fleet(&["dlq", "inspect", "--queue", &name]).ok);
    }
    let out = common::fleet(&["dlq", "inspect", "--queue", &name]);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("no reason recorded"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("receives") && !out.stdout.contains("after 3"),
        "the DLQ's own receive count is not the source queue's: {}",
        out.stdout
    );
    let json = json_lines(&common::fleet(&["dlq", "inspect", "--queue", &name, "--json"]).stdout);
    assert_eq!(json.len(), 1);
    assert!(json[0].get("receive_count").is_none(), "{}", json[0]);
    assert_eq!(
        json[0]["dlq_receive_count"], 4,
        "receives in the DLQ, inspections included"
    );
    assert_eq!(counts(&t, &dlq).await.visible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_shown_and_moved_once_and_notes_go_with_their_messages() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("dlq-copies");
    let dlq = declare_with_dlq(&t, &name, 3, Duration::from_secs(10)).await;
    // x: dead-lettered three times (two source deletes failed after the dead-letter send).
    let x = source_message("src-x", "{\"n\":\"x\"}", 1);
    let x_out = dead_letter(&x, &name, "permanent_failure", "no such customer");
    assert!(x_out.note.is_none());
    // m: 10 attributes of its own, so its reason is in a note; dead-lettered twice.
    let m = source_message("src-m", "{\"n\":\"m\"}", 10);
    let m_out = dead_letter(&m, &name, "permanent_failure", "bad amount");
    let m_note = m_out.note.clone().expect("no room for the reason: a note");
    // gone: only its note is left.
    let gone = source_message("src-gone", "{\"n\":\"gone\"}", 10);
    let gone_note = dead_letter(&gone, &name, "timeout", "slow").note.unwrap();
    put(
        &t,
        &dlq,
        &[
            x_out.message.clone(),
            m_note.clone(),
            m_out.message.clone(),
            x_out.message.clone(),
            m_note,
            m_out.message.clone(),
            x_out.message.clone(),
            gone_note,
        ],
    )
    .await;

    let out = common::fleet(&["dlq", "inspect", "--queue", &name]);
    assert!(out.ok, "{}", out.stderr);
    let text = &out.stdout;
    assert_eq!(text.matches("permanent_failure from").count(), 2, "{text}");
    assert!(text.contains("no such customer  (3 copies)"), "{text}");
    assert!(
        text.contains("bad amount  (2 copies, reason from a note)"),
        "{text}"
    );
    assert!(
        text.contains("note without its message: timeout from") && text.contains("src-gone"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "2 of 2 dead letter(s) in {dlq} (8 messages: 3 extra copies, 2 notes with their message, 1 note without its message)\n"
        )),
        "{text}"
    );
    let json = json_lines(&common::fleet(&["dlq", "inspect", "--queue", &name, "--json"]).stdout);
    assert_eq!(json.len(), 3, "{json:?}");
    let copies: Vec<usize> = json
        .iter()
        .filter(|v| v["reason"].is_object())
        .map(|v| v["copies"].as_array().unwrap().len())
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies.iter().sum::<usize>(), 3);
    assert_eq!(json.iter().filter(|v| v["orphan_note"] == true).count(), 1);

    let out = common::fleet(&["dlq", "redrive", "--queue", &name]);
    assert!(out.ok, "{}", out.stderr);
    for expected in [
        format!("moved 2 dead letter(s) from {dlq} to {name}"),
        "removed 3 extra copies (the source queue accepted one of each)".to_owned(),
        "removed 2 note(s) of moved messages".to_owned(),
        format!("left 1 note(s) whose message is not in {dlq}"),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}\n{}", out.stdout);
    }
    assert_eq!(counts(&t, &dlq).await.visible, 1, "the orphan note stays");
    let back = drain(&t, &name).await;
    let mut bodies: Vec<&str> = back.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["{\"n\":\"m\"}", "{\"n\":\"x\"}"], "one of each");
    let m_back = back.iter().find(|b| b.body.contains("\"m\"")).unwrap();
    assert_eq!(
        m_back.attributes, m.attributes,
        "all 10 of its own attributes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_escapes_control_and_bidi_characters_and_json_stays_exact() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("dlq-escape");
    let dlq = declare_with_dlq(&t, &name, 3, Duration::from_secs(10)).await;
    // SQS bodies allow C1 controls (U+009B is an 8-bit CSI), bidi overrides and CR; a reason,
    // JSON-escaped in its attribute, can carry anything (ESC, BEL, NUL).
    let body = "{\"file\":\"\u{202E}fdp.exe\",\"csi\":\"\u{9B}2J\",\"cr\":\"ok\rFAKE\"}";
    let why = "bad \u{1b}]0;pwned\u{7} \u{1b}[31mred\u{1b}[0m \u{0} end";
    let m = source_message("src-e", body, 1);
    put(
        &t,
        &dlq,
        &[dead_letter(&m, &name, "kind\u{1b}[5m", why).message],
    )
    .await;

    let out = common::fleet(&["dlq", "inspect", "--queue", &name]);
    assert!(out.ok, "{}", out.stderr);
    let hostile: Vec<char> = out
        .stdout
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202A}'..='\u{202E}').contains(c))
        .collect();
    assert!(hostile.is_empty(), "{hostile:?} in {:?}", out.stdout);
    for escaped in [
        "\\u{1b}]0;pwned\\u{7}",
        "\\u{202e}fdp.exe",
        "\\u{9b}2J",
        "ok\\rFAKE",
        "\\u{0} end",
    ] {
        assert!(out.stdout.contains(escaped), "{escaped} in {}", out.stdout);
    }
    let json = json_lines(&common::fleet(&["dlq", "inspect", "--queue", &name, "--json"]).stdout);
    assert_eq!(json[0]["body"], body, "JSON output is exact");
    assert_eq!(json[0]["reason"]["message"], why);
    assert_eq!(json[0]["reason"]["kind"], "kind\u{1b}[5m");
}
