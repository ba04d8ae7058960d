//! `fleet dlq redrive` against moto: other queues' dead letters stay unless forced, and
//! `StartMessageMoveTask` is used only when asked for and safe (moto lacks it, so the test sees
//! that it was asked for).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::dlq::{dead_letter, dead_letter_in, drain, put, source_message};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Declaration, OutgoingMessage, QueueDecl, Transport};
use fleet_tests::fleet::{counts, declare_with_dlq};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_leaves_other_queues_dead_letters_and_refuses_a_move_task_on_a_shared_dlq() {
    let t = fleet_tests::moto::transport().await;
    let (a, b, shared) = (
        unique_name("shared-a"),
        unique_name("shared-b"),
        unique_name("shared-dlq"),
    );
    t.declare(&Declaration::Queue(&QueueDecl::new(&shared)))
        .await
        .unwrap();
    for q in [&a, &b] {
        t.declare(&Declaration::Queue(
            &QueueDecl::new(q).dead_letter(&shared, 3),
        ))
        .await
        .unwrap();
    }
    let mut letters = Vec::new();
    for i in 0..3 {
        let m = source_message(&format!("a-{i}"), &format!("{{\"a\":{i}}}"), 1);
        letters.push(dead_letter(&m, &a, "unknown_type", "not yet").message);
    }
    for i in 0..2 {
        let m = source_message(&format!("b-{i}"), &format!("{{\"b\":{i}}}"), 1);
        letters.push(dead_letter(&m, &b, "unknown_type", "not yet").message);
    }
    letters.push(OutgoingMessage::new("{\"whose\":\"unknown\"}"));
    put(&t, &shared, &letters).await;

    let refused = common::fleet(&["dlq", "redrive", "--queue", &a, "--move-task"]);
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("serves 2 queues") && refused.stderr.contains(&b),
        "{}",
        refused.stderr
    );
    assert_eq!(counts(&t, &shared).await.visible, 6, "nothing moved");

    let out = common::fleet(&["dlq", "redrive", "--queue", &a]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        !out.stderr.contains("StartMessageMoveTask"),
        "{}",
        out.stderr
    );
    for expected in [
        format!("moved 3 dead letter(s) from {shared} to {a}"),
        format!("left 2 dead letter(s) recorded from {b}: not from {a} (--force moves them)"),
        format!(
            "left 1 dead letter(s) with no recorded source: {shared} is not the dead-letter queue of {a} alone (--force moves them)"
        ),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}\n{}", out.stdout);
    }
    assert_eq!(counts(&t, &shared).await.visible, 3);
    let back = drain(&t, &a).await;
    let mut bodies: Vec<&str> = back.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["{\"a\":0}", "{\"a\":1}", "{\"a\":2}"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_task_is_used_only_when_asked_for_and_safe() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("dlq-move");
    let dlq = declare_with_dlq(&t, &name, 3, Duration::from_secs(10)).await;
    let crowded = source_message("m-10", "{\"crowded\":true}", 10);
    let out = dead_letter(&crowded, &name, "invalid_field", "amount");
    put(&t, &dlq, &[out.note.clone().unwrap(), out.message.clone()]).await;
    let refused = common::fleet(&["dlq", "redrive", "--queue", &name, "--move-task"]);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("1 note(s)") && refused.stderr.contains("without --move-task"),
        "{}",
        refused.stderr
    );
    assert_eq!(counts(&t, &dlq).await.visible, 2, "nothing moved");

    let moved = common::fleet(&["dlq", "redrive", "--queue", &name]);
    assert!(moved.ok, "{}", moved.stderr);
    assert_eq!(counts(&t, &dlq).await.visible, 0);
    assert_eq!(drain(&t, &name).await.len(), 1, "the message, not its note");

    let plain = source_message("p-1", "{\"plain\":true}", 1);
    put(
        &t,
        &dlq,
        &[dead_letter(&plain, &name, "timeout", "slow").message],
    )
    .await;
    let asked = common::fleet(&["dlq", "redrive", "--queue", &name, "--move-task"]);
    // Safe, so the task is asked for; moto does not implement StartMessageMoveTask.
    assert!(!asked.ok, "{}", asked.stdout);
    assert!(
        asked.stderr.contains("StartMessageMoveTask")
            && asked.stderr.contains("without --move-task"),
        "{}",
        asked.stderr
    );
    assert_eq!(counts(&t, &dlq).await.visible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_refuses_dead_letters_recorded_from_another_queue_unless_forced() {
    let t = fleet_tests::moto::transport().await;
    let (orders, email) = (unique_name("x-orders"), unique_name("x-email"));
    declare_with_dlq(&t, &orders, 3, Duration::from_secs(10)).await;
    let email_dlq = declare_with_dlq(&t, &email, 3, Duration::from_secs(10)).await;
    let letters: Vec<OutgoingMessage> = (0..2)
        .map(|i| {
            let m = source_message(&format!("e-{i}"), &format!("{{\"email\":{i}}}"), 1);
            dead_letter(&m, &email, "unknown_type", "template missing").message
        })
        .chain([OutgoingMessage::new("{\"bare\":1}")])
        .collect();
    put(&t, &email_dlq, &letters).await;

    let out = common::fleet(&["dlq", "redrive", "--queue", &orders, "--dlq", &email_dlq]);
    assert!(out.ok, "{}", out.stderr);
    for expected in [
        format!("moved 0 dead letter(s) from {email_dlq} to {orders}"),
        format!(
            "left 2 dead letter(s) recorded from {email}: not from {orders} (--force moves them)"
        ),
        format!(
            "left 1 dead letter(s) with no recorded source: {email_dlq} is not the dead-letter queue of {orders} alone (--force moves them)"
        ),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}\n{}", out.stdout);
    }
    assert_eq!(counts(&t, &orders).await.visible, 0);
    assert_eq!(counts(&t, &email_dlq).await.visible, 3);

    let forced = common::fleet(&[
        "dlq", "redrive", "--queue", &orders, "--dlq", &email_dlq, "--force",
    ]);
    assert!(forced.ok, "{}", forced.stderr);
    assert!(
        forced.stdout.contains(&format!(
            "moved 3 dead letter(s) from {email_dlq} to {orders}"
        )),
        "{}",
        forced.stdout
    );
    assert_eq!(counts(&t, &orders).await.visible, 3);
    assert_eq!(counts(&t, &email_dlq).await.visible, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_dlq_is_moved_back_in_order() {
    let t = fleet_tests::moto::transport().await;
    let name = unique_name("redrive.fifo");
    let dlq = declare_with_dlq(&t, &name, 3, Duration::from_secs(10)).await;
    let letters: Vec<OutgoingMessage> = (0..25)
        .map(|i| {
            let mut m = source_message(&format!("f-{i}"), &format!("{{\"n\":{i}}}"), 1);
            m.system.message_group_id = Some("customer-1".to_owned());
            dead_letter_in(&m, &name, "timeout", "slow", true).message
        })
        .collect();
    put(&t, &dlq, &letters).await;
    let out = common::fleet(&["dlq", "redrive", "--queue", &name]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("moved 25 dead letter(s) from {dlq} to {name}")),
        "{}",
        out.stdout
    );
    let back = drain(&t, &name).await;
    let order: Vec<String> = back.iter().map(|m| m.body.clone()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
    assert_eq!(order, expected, "in order, once each");
    assert_eq!(counts(&t, &dlq).await.visible, 0);
}
