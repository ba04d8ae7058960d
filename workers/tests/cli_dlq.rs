//! `fleet dlq inspect` and `fleet dlq redrive` end to end against moto: messages a Fleet consumer
//! dead-lettered are listed with their reasons, then moved back to the source queue (by
//! receive/send/delete, since moto lacks StartMessageMoveTask).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

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
        inspect.stdout.contains(&format!("25 message(s) in {dlq}")),
        "{}",
        inspect.stdout
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
        redrive
            .stderr
            .contains("StartMessageMoveTask is not available"),
        "{}",
        redrive.stderr
    );
    assert!(
        redrive
            .stdout
            .contains(&format!("moved 27 message(s) from {dlq} to {name}")),
        "{}",
        redrive.stdout
    );
    assert!(
        redrive
            .stdout
            .contains("left 1 message(s) that Fleet dead-lettered from other queues"),
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
