//! Crash tests at the failpoints (`fleet_bus::failpoint`): `fleet run` against moto is started
//! with `FAILPOINTS=<point>=return`, which aborts the process at that exact seam; the test checks
//! what the crash left, restarts the fleet without failpoints, and checks the effect happened
//! exactly once. Everything is counted independently of the workers: the table's items (read
//! with a raw scan) and the queues' contents (drained by the test).
//!
//! - `orders::after_commit`: committed, outbox rows pending, nothing published; after the
//!   restart the order was applied once and each outbox row published exactly once.
//! - `settler::before_delete_flush`: applied and published, the message not deleted; after the
//!   restart it was redelivered, deduplicated (no second transition, no second publish), deleted.
//! - `settler::during_extension`: a handler held up after its commit (`orders::after_commit=
//!   return(MS)`) outlives half the visibility timeout, and the process aborts as its lease
//!   extension goes out; after the restart the message was redelivered, the order applied once
//!   and the outbox published once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::fleet_run::{Deployment, envelope_id_list};
use common::orders::{env, message, placed};
use fleet_bus::Transport;
use fleet_bus::producer::BatchProducer;

/// The orders queue's visibility timeout here: how long a crashed process's message stays
/// invisible before the restarted fleet receives it again.
const VISIBILITY_SECONDS: u32 = 4;
const EXIT_LIMIT: Duration = Duration::from_secs(30);
const DRAIN_LIMIT: Duration = Duration::from_secs(40);

/// A deployment whose orders queue has a short visibility timeout, provisioned on moto.
async fn deployment(name: &str) -> Deployment {
    let d = Deployment::write(name, 5, Deployment::email_off).await;
    let text = std::fs::read_to_string(d.topology()).unwrap();
    let orders = format!("name = \"{}\"\nvisibility_timeout_seconds = 20", d.orders());
    assert!(text.contains(&orders), "the test topology changed: {text}");
    let text = text.replace(
        &orders,
        &format!(
            "name = \"{}\"\nvisibility_timeout_seconds = {VISIBILITY_SECONDS}",
            d.orders()
        ),
    );
    std::fs::write(d.topology(), text).unwrap();
    d.provision_topology().await;
    d
}

/// Publishes `order.placed` (with an address, so it causes a confirmation) for `order`.
async fn publish_placed(d: &Deployment, order: &str, event_id: &str) {
    let envelope = env(event_id, 0, placed(order, "c-1", 1000, true));
    let topic = d.transport.topic(&d.topic()).await.unwrap();
    let report = BatchProducer::to_topic(d.topic(), topic)
        .send_all(vec![message(&envelope)], |_| {})
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

/// What the table holds, read with a raw scan: the order items' `version` and `applied` ids,
/// and the outbox rows' event ids.
#[derive(Debug, Default)]
struct TableView {
    orders: Vec<(u64, Vec<String>)>,
    outbox: Vec<String>,
}

async fn table_view(d: &Deployment) -> TableView {
    let client = aws_sdk_dynamodb::Client::new(&d.sdk);
    let scan = client.scan().table_name(d.table()).send().await.unwrap();
    let mut view = TableView::default();
    for item in scan.items() {
        let s = |k: &str| match item.get(k) {
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("{k}: {other:?} in {item:?}"),
        };
        match s("type").as_str() {
            "order" => {
                let version = match item.get("version") {
                    Some(AttributeValue::N(n)) => n.parse().unwrap(),
                    other => panic!("version: {other:?}"),
                };
                let applied = match item.get("applied") {
                    Some(AttributeValue::L(l)) => {
                        l.iter().map(|v| v.as_s().unwrap().clone()).collect()
                    }
                    Some(AttributeValue::Ss(l)) => l.clone(),
                    other => panic!("applied: {other:?}"),
                };
                view.orders.push((version, applied));
            }
            "outbox" => view.outbox.push(s("event_id")),
            _ => {}
        }
    }
    view
}

/// How many copies of each envelope id the email and analytics queues hold (drained).
async fn published(d: &Deployment) -> BTreeMap<String, usize> {
    let mut copies = BTreeMap::new();
    for q in [d.email(), d.analytics()] {
        for id in envelope_id_list(&d.drain_queue(&q).await) {
            *copies.entry(id).or_default() += 1;
        }
    }
    copies
}

/// Starts the orders worker with `FAILPOINTS`, publishes one `order.placed`, and waits for the
/// process to abort at the failpoint; returns the deployment.
async fn crash_at(name: &str, failpoint: &str) -> Deployment {
    crash_with(name, &format!("{failpoint}=return"), failpoint).await
}

/// As [`crash_at`], with `failpoints` as `FAILPOINTS`, the process aborting at `failpoint`.
async fn crash_with(name: &str, failpoints: &str, failpoint: &str) -> Deployment {
    let d = deployment(name).await;
    let crashing = d.start_with_env(&["orders"], 0, &[("FAILPOINTS", failpoints)]);
    publish_placed(&d, "o-1", "placed-1").await;
    let ended = tokio::task::spawn_blocking(move || crashing.wait_exit(EXIT_LIMIT))
        .await
        .unwrap();
    assert_eq!(
        ended.code, None,
        "not killed by the abort: {}",
        ended.stderr
    );
    assert!(
        ended
            .stderr
            .contains(&format!("failpoint {failpoint}: aborting")),
        "{}",
        ended.stderr
    );
    d
}

/// Restarts the orders worker without failpoints and waits for the orders queue to drain.
async fn recover(d: &Deployment) {
    d.run_until_drained(&["orders"], 1, &[d.orders()], DRAIN_LIMIT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_commit_and_the_publish_publishes_the_outbox_once_after_restart() {
    let d = crash_at("fp-after-commit", "orders::after_commit").await;
    // The seam: committed with its outbox, nothing published.
    let crashed = table_view(&d).await;
    assert_eq!(
        crashed.orders,
        vec![(1, vec!["placed-1".to_owned()])],
        "{crashed:?}"
    );
    assert!(!crashed.outbox.is_empty(), "no outbox row: {crashed:?}");
    let counts = d.counts(&[d.email()]).await;
    assert_eq!(counts[&d.email()], 0, "published before the crash");

    recover(&d).await;
    let after = table_view(&d).await;
    assert_eq!(
        after.orders,
        vec![(1, vec!["placed-1".to_owned()])],
        "applied twice: {after:?}"
    );
    assert!(after.outbox.is_empty(), "outbox rows left: {after:?}");
    let copies = published(&d).await;
    for id in &crashed.outbox {
        assert_eq!(copies.get(id), Some(&1), "outbox row {id}: {copies:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_delete_flushes_redelivers_and_the_duplicate_changes_nothing() {
    let d = crash_at("fp-before-delete", "settler::before_delete_flush").await;
    // The seam: applied and published, the message still in the queue.
    let crashed = table_view(&d).await;
    assert_eq!(crashed.orders, vec![(1, vec!["placed-1".to_owned()])]);
    assert!(crashed.outbox.is_empty(), "{crashed:?}");
    let counts = d.counts(&[d.orders()]).await;
    assert_eq!(counts[&d.orders()], 1, "the message was deleted");

    recover(&d).await;
    let after = table_view(&d).await;
    assert_eq!(
        after.orders,
        vec![(1, vec!["placed-1".to_owned()])],
        "applied twice: {after:?}"
    );
    let copies = published(&d).await;
    let confirmations: Vec<_> = copies.iter().filter(|(id, _)| *id != "placed-1").collect();
    assert!(!confirmations.is_empty(), "nothing published: {copies:?}");
    for (id, n) in confirmations {
        assert_eq!(*n, 1, "{id} published {n} times: {copies:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_lease_extension_redelivers_without_a_double_effect() {
    // The handler is held well past the point where its lease is extended (half the visibility
    // timeout), so the extension is what crashes.
    let hold_ms = VISIBILITY_SECONDS * 1000 * 2;
    let failpoints =
        format!("orders::after_commit=return({hold_ms});settler::during_extension=return");
    let d = crash_with("fp-extension", &failpoints, "settler::during_extension").await;
    let crashed = table_view(&d).await;
    assert_eq!(crashed.orders, vec![(1, vec!["placed-1".to_owned()])]);
    assert!(!crashed.outbox.is_empty(), "{crashed:?}");

    recover(&d).await;
    let after = table_view(&d).await;
    assert_eq!(
        after.orders,
        vec![(1, vec!["placed-1".to_owned()])],
        "applied twice: {after:?}"
    );
    assert!(after.outbox.is_empty(), "outbox rows left: {after:?}");
    let copies = published(&d).await;
    for id in &crashed.outbox {
        assert_eq!(copies.get(id), Some(&1), "outbox row {id}: {copies:?}");
    }
}
