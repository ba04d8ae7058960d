//! The orders worker on moto: `DynamoOrderStore` on the single table, events published through
//! SNS to the orders queue (shuffled, with duplicates and events before their order), outgoing
//! events published to the topic and fanned out to the email and analytics queues. Prints the
//! DynamoDB write calls per applied transition, counted by the SDK interceptor.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::orders::{cancelled, env, message, paid, placed, refunded, shipped};
use fleet_bus::aws::SqsTransport;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::producer::BatchProducer;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, Publisher, Topology, Transport, provision};
use fleet_schemas::Envelope;
use fleet_tests::fleet::{Running, counts, eventually, quick_config};
use fleet_workers::aws_calls::AwsCalls;
use fleet_workers::orders::{DynamoOrderStore, OrderEvent, OrderStatus, OrderStore, OrdersWorker};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Receives of the orders queue before a message is dead-lettered, in this test.
const MAX_RECEIVES: u32 = 10;

/// The deployment topology with every queue and topic name suffixed, so tests share moto; the
/// orders queue gets [`MAX_RECEIVES`].
fn topology(suffix: &str) -> Topology {
    let mut t = Topology::from_toml(fleet_workers::demo::TOPOLOGY).unwrap();
    let rename = |n: &mut String| *n = format!("{n}-{suffix}");
    for q in &mut t.queues {
        if let (Some(dl), "fleet-orders") = (&mut q.dead_letter, q.name.as_str()) {
            dl.max_receive_count = MAX_RECEIVES;
        }
        rename(&mut q.name);
        if let Some(dl) = &mut q.dead_letter {
            rename(&mut dl.queue);
        }
    }
    for topic in &mut t.topics {
        rename(&mut topic.name);
        for s in &mut topic.subscriptions {
            rename(&mut s.queue);
        }
    }
    t.tables.clear();
    t
}

/// What each order's events are, and where they must leave it: status, refunded cents.
fn histories(orders: usize) -> Vec<(String, Vec<OrderEvent>, OrderStatus, u64)> {
    (0..orders)
        .map(|i| {
            let id = format!("o-{i}");
            let customer = format!("c-{}", i % 3);
            let mut events = vec![placed(&id, &customer, 1000, i % 2 == 0)];
            let (status, refunded_cents) = match i % 4 {
                0 => {
                    events.extend([paid(&id, 1000), shipped(&id), refunded(&id, 250)]);
                    (OrderStatus::Shipped, 250)
                }
                1 => {
                    events.push(cancelled(&id));
                    (OrderStatus::Cancelled, 0)
                }
                2 => {
                    events.extend([paid(&id, 1000), refunded(&id, 400), refunded(&id, 600)]);
                    (OrderStatus::Refunded, 1000)
                }
                _ => {
                    events.push(paid(&id, 1000));
                    (OrderStatus::Paid, 0)
                }
            };
            (id, events, status, refunded_cents)
        })
        .collect()
}

/// Envelope ids of the messages of `event_type` in a queue (read and deleted), with how often
/// each arrived.
async fn drain_ids(t: &dyn Transport, queue: &str, event_type: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for m in common::dlq::drain(t, queue).await {
        let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        if v["type"] == event_type {
            *seen
                .entry(v["id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    seen
}

/// Every event of the histories once, 10 % of them twice, shuffled, published to the topic.
async fn publish_shuffled(
    publisher: Arc<dyn Publisher>,
    topic: &str,
    envelopes: &[Envelope<OrderEvent>],
) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut deliveries: Vec<&Envelope<OrderEvent>> = envelopes.iter().collect();
    deliveries.extend(envelopes.iter().step_by(10));
    deliveries.shuffle(&mut rng);
    let report = BatchProducer::to_topic(topic, publisher)
        .send_all(deliveries.iter().map(|e| message(e)).collect(), |_| {})
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    deliveries.len()
}

/// Runs the worker on the orders queue until it holds nothing. An event waits for its order (or
/// its payment) for 1 + 2 + 4 + 8 × 6 = 55 s over its [`MAX_RECEIVES`] receives: the whole
/// backlog is processed well within that even on a loaded machine (with 5 receives and a 1-2 s
/// backoff, 7 s, events were dead-lettered as `order_not_found` when 8 of these tests ran at once).
async fn consume(transport: &SqsTransport, queue: &str, worker: &OrdersWorker) {
    let mut settings = quick_config();
    settings.retry = RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(8),
        jitter: Jitter::None,
    };
    settings.concurrency = Some(8);
    settings.handler_name = "orders".into();
    let running = Running::start(
        Consumer::new(transport.clone(), queue)
            .handler(worker.handler())
            .config(settings),
    );
    eventually(Duration::from_secs(120), || async {
        let c = counts(transport, queue).await;
        c.visible + c.in_flight + c.delayed == 0
    })
    .await;
    running.stop().await;
}

/// Prints the DynamoDB calls and returns the write calls per applied transition.
fn write_calls_per_transition(calls: &AwsCalls, transitions: usize, deliveries: usize) -> f64 {
    let writes = [
        "TransactWriteItems",
        "BatchWriteItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
    ];
    let total = calls.calls_of("DynamoDB", &writes);
    let per = total as f64 / transitions as f64;
    let transact = calls.get("DynamoDB", "TransactWriteItems");
    println!(
        "orders on moto: {transitions} applied transitions from {deliveries} deliveries; \
         DynamoDB write calls {total} (TransactWriteItems {}, of which failed {}; BatchWriteItem {}) \
         = {per:.2} per applied transition; reads: Query {}\n{calls}",
        transact.calls,
        transact.errors,
        calls.get("DynamoDB", "BatchWriteItem").calls,
        calls.get("DynamoDB", "Query").calls,
    );
    per
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_through_sns_end_in_the_table_with_their_events_published() {
    const ORDERS: usize = 24;
    let config = fleet_tests::moto::sdk_config().await;
    let suffix = unique_name("o");
    let table = format!("fleet-{suffix}");
    fleet_tests::dynamo::single_table(&config, &table).await;
    let transport = fleet_tests::moto::transport().await;
    provision(&transport, &topology(&suffix)).await.unwrap();
    let name = |n: &str| format!("{n}-{suffix}");
    let histories = histories(ORDERS);
    let envelopes: Vec<Envelope<OrderEvent>> = histories
        .iter()
        .flat_map(|(id, events, _, _)| {
            events
                .iter()
                .enumerate()
                .map(move |(n, e)| env(&format!("{id}-{n}"), n as i64, e.clone()))
        })
        .collect();
    let publisher = transport.topic(&name("fleet-events")).await.unwrap();
    let deliveries = publish_shuffled(publisher.clone(), &name("fleet-events"), &envelopes).await;

    let calls = AwsCalls::new();
    let store = Arc::new(DynamoOrderStore::new(
        calls.dynamodb_client(&config),
        &table,
    ));
    let events = BatchProducer::to_topic(name("fleet-events"), publisher);
    consume(
        &transport,
        &name("fleet-orders"),
        &OrdersWorker::new(store.clone(), events),
    )
    .await;

    let dead: Vec<String> = common::dlq::drain(&transport, &name("fleet-orders-dlq"))
        .await
        .iter()
        .map(|m| format!("{:?}: {}", DeadLetterReason::from_message(m), m.body))
        .collect();
    assert!(
        dead.is_empty(),
        "nothing dead-lettered:\n{}",
        dead.join("\n")
    );
    for (id, events, status, refunded_cents) in &histories {
        let loaded = store.load(id).await.unwrap().unwrap();
        assert_eq!(loaded.record.order.status, *status, "{id}");
        assert_eq!(loaded.record.order.refunded_cents, *refunded_cents, "{id}");
        assert_eq!(loaded.record.version, events.len() as u64, "{id}");
        let applied: BTreeSet<&String> = loaded.record.applied.iter().collect();
        assert_eq!(applied.len(), events.len(), "{id}: each event applied once");
        assert!(
            loaded.outbox.is_empty(),
            "{id}: the outbox was published and cleared"
        );
    }
    let analytics = drain_ids(&transport, &name("fleet-analytics"), "analytics.tracked").await;
    let expected: BTreeSet<String> = envelopes
        .iter()
        .map(|e| format!("{}:analytics", e.header.id))
        .collect();
    assert_eq!(analytics.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let emails = drain_ids(&transport, &name("fleet-email"), "email.requested").await;
    assert_eq!(
        emails.len(),
        ORDERS / 2,
        "one confirmation per order with an address"
    );

    let per = write_calls_per_transition(&calls, envelopes.len(), deliveries);
    assert!(
        per <= 3.0,
        "at most 3 write calls per applied transition, got {per:.2}"
    );
}
