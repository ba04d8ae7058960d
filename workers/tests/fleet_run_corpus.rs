//! Bad events through the queues of a running `fleet run` on moto: every case of the schemas
//! crate's corpus (`schemas/tests/corpus`) is sent to the orders queue and to the analytics queue,
//! beside a small scenario of good events published through SNS. Each bad message is dead-lettered
//! with the corpus's label (the orders worker labels types it has no handler for `unknown_type`
//! first; the analytics worker acknowledges types it does not know), and the good events still
//! end exactly as their model says.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

/// The schemas crate's corpus reader, shared as it is (it finds its files through the two
/// functions below).
#[path = "../../schemas/tests/common/corpus.rs"]
#[allow(dead_code)]
mod corpus;

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/tests/corpus")
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::fleet_run::Deployment;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::{AttributeValue, MessageAttributes, OutgoingMessage, Transport};
use fleet_workers::demo::{Confirmations, check};
use fleet_workers::orders::{DynamoOrderStore, OrderStore};
use fleet_workers::scenario::Scenario;

const CASE: &str = "corpus-case";

/// The event type a body names, through an SNS envelope if there is one.
fn type_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(inner) = v.get("Message").and_then(|m| m.as_str()) {
        return type_of(inner);
    }
    Some(v.get("type")?.as_str()?.to_owned())
}

/// The label a case is dead-lettered with, or `None` when it must be acknowledged. That is the
/// corpus's label, except that the orders worker routes by type before it decodes (a well-formed
/// Fleet type it has no handler for, such as `email.requested`, `email.sent` or
/// `analytics.tracked`, is `unknown_type` there, whatever else is wrong with the payload), and
/// the analytics worker acknowledges types it does not know (a newer producer's) instead of
/// dead-lettering them.
fn expected_label(orders_queue: bool, case: &corpus::Case) -> Option<String> {
    let body = corpus::body(case);
    if !orders_queue && case.label.as_deref() == Some("unknown_type") {
        return None;
    }
    match type_of(&body) {
        Some(t)
            if orders_queue
                && !t.starts_with("order.")
                && fleet_schemas::event_types()
                    .iter()
                    .any(|(known, _)| *known == t) =>
        {
            Some("unknown_type".to_owned())
        }
        _ => case.label.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_event_is_dead_lettered_with_its_label_and_the_rest_goes_on() {
    let d = Deployment::provision("corpus", 12).await;
    let mut process = d.start(&[], 1);
    let cases = corpus::cases();
    // What SQS itself refuses (over 256 KiB) never reaches a worker: counted, not sent.
    let mut refused_by_sqs = BTreeMap::<String, usize>::new();
    let mut sent = 0;
    let mut acked = 0;
    for queue in [d.orders(), d.analytics()] {
        let sender = d.transport.queue(&queue).await.unwrap().sender();
        for (i, case) in cases.iter().enumerate() {
            let mut attributes = MessageAttributes::new();
            attributes.insert(CASE.into(), AttributeValue::string(i.to_string()));
            let message = OutgoingMessage {
                body: corpus::body(case),
                attributes,
                ..OutgoingMessage::default()
            };
            match sender.send(message).await {
                Ok(_) if expected_label(queue == d.orders(), case).is_none() => acked += 1,
                Ok(_) => sent += 1,
                Err(_) => {
                    *refused_by_sqs
                        .entry(case.label.clone().unwrap_or_default())
                        .or_default() += 1
                }
            }
        }
    }
    assert!(
        refused_by_sqs.keys().all(|l| l == "oversize"),
        "SQS refused only oversize bodies: {refused_by_sqs:?}"
    );
    let scenario = Scenario::generate(13, 20, 80, 0.0);
    d.publish(&scenario).await;
    d.wait_until_drained(&[d.orders(), d.analytics()], Duration::from_secs(300))
        .await;
    assert!(process.running(), "fleet run stopped:\n{}", process.logs());
    let ended = process.terminate(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);

    let mut bad = 0;
    let mut wrong_labels = Vec::new();
    let mut good_dead = Vec::new();
    for queue in [d.orders(), d.analytics()] {
        for m in d.drain_queue(&format!("{queue}-dlq")).await {
            let Some(i) = m.attributes.get(CASE).and_then(AttributeValue::as_str) else {
                good_dead.push(m);
                continue;
            };
            bad += 1;
            let case = &cases[i.parse::<usize>().unwrap()];
            let kind = DeadLetterReason::from_message(&m).map(|r| r.kind);
            let expected = expected_label(queue == d.orders(), case);
            if kind.as_deref() != expected.as_deref() {
                wrong_labels.push(format!(
                    "{queue}: {} labelled {kind:?}, corpus says {:?}",
                    case.name, case.label
                ));
            }
        }
    }
    println!(
        "{} bad messages sent ({} refused by SQS as oversize): {bad} dead-lettered, {acked} of unknown types acknowledged by analytics",
        sent + acked,
        refused_by_sqs.values().sum::<usize>()
    );
    assert!(acked > 0, "the corpus has unknown types");
    assert!(wrong_labels.is_empty(), "{}", wrong_labels.join("\n"));
    assert_eq!(
        bad, sent,
        "every bad message that was sent is dead-lettered, once"
    );

    // The good events went on as if nothing happened.
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&d.sdk), d.table());
    let mut orders = Vec::new();
    for o in &scenario.orders {
        orders.extend(store.load(&o.order_id).await.unwrap());
    }
    let emails = d.drain_queue(&d.email()).await;
    let requested = common::fleet_run::envelope_id_list(&emails);
    let verdict = check(
        &scenario,
        &orders,
        &HashMap::new(),
        &good_dead,
        &Confirmations::Published(requested),
    );
    let orders_lost: Vec<_> = verdict
        .lost
        .iter()
        .filter(|l| !l.starts_with("counter"))
        .collect();
    assert!(
        orders_lost.is_empty()
            && verdict.wrong.is_empty()
            && verdict
                .double_applied
                .iter()
                .all(|l| l.starts_with("counter")),
        "lost {orders_lost:?}\nwrong {:?}",
        verdict.wrong
    );
}
