//! The orders worker on the embedded transport with the in-memory store, on a paused clock:
//! duplicates, reordering, impossible transitions, a publish outage and a crash between the
//! commit and the publish, and concurrent events for one order.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::orders::{
    Interleaving, Stall, Switch, cancelled, env, message, paid, placed, refunded, shipped,
};
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::producer::BatchProducer;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::scenarios::support::{Running, peek_all, send_all, wait_drained, wait_until};
use fleet_bus::{Consumer, Message, OutgoingMessage, Topology, Transport};
use fleet_schemas::Envelope;
use fleet_workers::orders::{
    Handled, LoadedOrder, OrderEvent, OrderStatus, OrderStore, OrdersWorker,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const ORDERS: &str = "fleet-orders";
const ORDERS_DLQ: &str = "fleet-orders-dlq";
const TOPIC: &str = "fleet-events";

struct Rig {
    bus: EmbeddedBus,
    store: Arc<Interleaving>,
    topic: Arc<Switch>,
    running: Running,
}

async fn rig(concurrency: usize) -> Rig {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology::from_toml(fleet_workers::demo::TOPOLOGY).unwrap())
        .await
        .unwrap();
    let topic = Arc::new(Switch {
        inner: bus.topic(TOPIC).await.unwrap(),
        down: AtomicBool::new(false),
        refused: AtomicUsize::new(0),
    });
    let store = Arc::new(Interleaving::default());
    let worker = OrdersWorker::new(store.clone(), BatchProducer::to_topic(TOPIC, topic.clone()));
    let consumer = Consumer::new(bus.clone(), ORDERS)
        .handler(worker.handler())
        .configure(|c| {
            c.wait_time = Duration::from_secs(1);
            c.flush_interval = Duration::from_millis(20);
            c.concurrency = Some(concurrency);
            c.max_in_flight = Some(concurrency.max(10));
            c.retry = RetryPolicy {
                base: Duration::from_secs(1),
                max: Duration::from_secs(8),
                jitter: Jitter::None,
            };
            c.handler_name = "orders".into();
        });
    Rig {
        bus,
        store,
        topic,
        running: Running::start(consumer),
    }
}

impl Rig {
    async fn send(&self, events: &[&Envelope<OrderEvent>]) {
        send_all(
            &self.bus,
            ORDERS,
            events.iter().map(|e| message(e)).collect(),
        )
        .await;
    }

    async fn drained(&self) {
        wait_drained(&self.bus, ORDERS, Duration::from_secs(600)).await;
    }

    fn order(&self, id: &str) -> LoadedOrder {
        let all = self.store.inner.snapshot();
        all.into_iter()
            .find(|o| o.record.order.order_id() == id)
            .unwrap_or_else(|| panic!("no order {id}"))
    }

    /// Envelope ids of what was published to a queue, with how often each arrived.
    async fn published(&self, queue: &str) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for m in peek_all(&self.bus, queue).await {
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            *seen
                .entry(v["id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        seen
    }

    async fn dead_letters(&self) -> Vec<(Message, DeadLetterReason)> {
        peek_all(&self.bus, ORDERS_DLQ)
            .await
            .into_iter()
            .map(|m| {
                let reason = DeadLetterReason::from_message(&m).unwrap();
                (m, reason)
            })
            .collect()
    }
}

fn once(ids: &[&str]) -> BTreeMap<String, usize> {
    ids.iter().map(|id| ((*id).to_owned(), 1)).collect()
}

#[tokio::test(start_paused = true)]
async fn duplicates_are_no_ops() {
    let rig = rig(1).await;
    let e1 = env("e1", 0, placed("o-1", "c-1", 500, true));
    let e2 = env("e2", 1, paid("o-1", 500));
    rig.send(&[&e1, &e1, &e2, &e2, &e1, &e2]).await;
    rig.drained().await;
    let order = rig.order("o-1");
    assert_eq!(order.record.version, 2);
    assert_eq!(order.record.applied, ["e1", "e2"]);
    assert_eq!(order.record.order.status, OrderStatus::Paid);
    assert!(order.outbox.is_empty());
    assert_eq!(rig.published("fleet-email").await, once(&["e1:email"]));
    assert_eq!(
        rig.published("fleet-analytics").await,
        once(&["e1:analytics", "e2:analytics"])
    );
    assert!(rig.dead_letters().await.is_empty());
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn events_before_their_order_are_retried_then_applied() {
    let rig = rig(4).await;
    let early = [
        env("e2", 1, paid("o-1", 500)),
        env("e3", 2, shipped("o-1")),
        env("e4", 3, refunded("o-1", 200)),
    ];
    rig.send(&early.iter().collect::<Vec<_>>()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        rig.store.inner.snapshot().is_empty(),
        "nothing applies before the order"
    );
    rig.send(&[&env("e1", 0, placed("o-1", "c-1", 500, false))])
        .await;
    rig.drained().await;
    let order = rig.order("o-1").record;
    assert_eq!(order.order.status, OrderStatus::Shipped);
    assert_eq!(order.order.refunded_cents, 200);
    assert_eq!(order.version, 4);
    assert_eq!(
        order.order.updated_at,
        common::orders::t0() + chrono::Duration::minutes(3)
    );
    // Four handlers at once: an event that finds a row of its order still pending publishes it
    // too (so a row whose own handler died is never stranded), and a row can go out twice, with
    // the same id, which consumers deduplicate. At least once each, and nothing else.
    let published = rig.published("fleet-analytics").await;
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        [
            "e1:analytics",
            "e2:analytics",
            "e3:analytics",
            "e4:analytics"
        ],
        "{published:?}"
    );
    assert!(published.values().all(|n| *n >= 1), "{published:?}");
    assert!(rig.dead_letters().await.is_empty());
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_event_whose_order_never_comes_is_dead_lettered_as_order_not_found() {
    let rig = rig(1).await;
    rig.send(&[&env("lost", 0, paid("o-never", 100))]).await;
    rig.drained().await;
    let dead = rig.dead_letters().await;
    assert_eq!(dead.len(), 1);
    let reason = &dead[0].1;
    assert_eq!(reason.kind, "order_not_found");
    assert_eq!(
        reason.attempt, 10,
        "the queue's maxReceiveCount in deploy/topology.toml"
    );
    assert_eq!(
        reason.message,
        "gave up after attempt 10 of 10: order_not_found: order o-never does not exist (yet) for its paid event"
    );
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn impossible_transitions_are_dead_lettered_with_the_reason() {
    let rig = rig(1).await;
    for e in [
        env("e1", 0, placed("o-1", "c-1", 500, false)),
        env("e2", 1, paid("o-1", 500)),
        env("e3", 2, shipped("o-1")),
        env("f1", 0, placed("o-2", "c-1", 700, false)),
    ] {
        rig.send(&[&e]).await;
        rig.drained().await;
    }
    rig.send(&[
        &env("late-paid", 3, paid("o-1", 500)),
        &env("late-cancel", 3, cancelled("o-1")),
        &env("short", 1, paid("o-2", 600)),
    ])
    .await;
    send_all(&rig.bus, ORDERS, vec![OutgoingMessage::new("not json")]).await;
    rig.drained().await;
    let mut reasons: Vec<(String, String, u32)> = rig
        .dead_letters()
        .await
        .into_iter()
        .map(|(_, r)| (r.kind, r.message, r.attempt))
        .collect();
    reasons.sort();
    let bad_json = fleet_schemas::decode("not json").unwrap_err();
    assert_eq!(
        reasons,
        [
            (
                "amount_mismatch".into(),
                "amount_mismatch: paid 600 for an order of 700 EUR".into(),
                1
            ),
            (bad_json.label().into(), bad_json.report(), 1),
            (
                "invalid_transition".into(),
                "invalid_transition: shipped → cancelled".into(),
                1
            ),
            (
                "invalid_transition".into(),
                "invalid_transition: shipped → paid".into(),
                1
            ),
        ]
    );
    assert_eq!(
        rig.order("o-1").record.version,
        3,
        "refused events change nothing"
    );
    assert_eq!(rig.order("o-2").record.version, 1);
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_publish_outage_after_the_commit_loses_nothing() {
    let rig = rig(1).await;
    rig.topic.down.store(true, Ordering::SeqCst);
    rig.send(&[&env("e1", 0, placed("o-1", "c-1", 500, true))])
        .await;
    wait_until(Duration::from_secs(60), || async {
        rig.topic.refused.load(Ordering::SeqCst) > 0
    })
    .await;
    let committed = rig.order("o-1");
    assert_eq!(committed.record.version, 1, "committed before publishing");
    assert_eq!(committed.outbox.len(), 2, "both events wait in the outbox");
    tokio::time::sleep(Duration::from_secs(3)).await;
    rig.topic.down.store(false, Ordering::SeqCst);
    rig.drained().await;
    assert!(rig.order("o-1").outbox.is_empty());
    assert_eq!(rig.order("o-1").record.version, 1, "applied once");
    assert_eq!(rig.published("fleet-email").await, once(&["e1:email"]));
    assert_eq!(
        rig.published("fleet-analytics").await,
        once(&["e1:analytics"])
    );
    assert!(rig.dead_letters().await.is_empty());
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_commit_and_publish_is_repaired_by_the_redelivery() {
    let rig = rig(1).await;
    let store: Arc<dyn OrderStore> = rig.store.clone();
    let cause = env("e1", 0, placed("o-1", "c-1", 500, true));
    let dying = OrdersWorker::new(
        store.clone(),
        BatchProducer::to_topic(TOPIC, Arc::new(Stall)),
    );
    let crashed = tokio::time::timeout(Duration::from_secs(10), dying.handle(&cause)).await;
    assert!(crashed.is_err(), "the handler was dropped while publishing");
    let committed = rig.order("o-1");
    assert_eq!(committed.record.version, 1);
    assert_eq!(committed.outbox.len(), 2, "committed, not published");

    // The redelivery, on the running consumer: a duplicate that publishes what is pending.
    rig.send(&[&cause]).await;
    rig.drained().await;
    assert!(rig.order("o-1").outbox.is_empty());
    assert_eq!(rig.order("o-1").record.version, 1);
    assert_eq!(rig.published("fleet-email").await, once(&["e1:email"]));
    assert_eq!(
        rig.published("fleet-analytics").await,
        once(&["e1:analytics"])
    );
    let healthy = OrdersWorker::new(store, BatchProducer::to_topic(TOPIC, rig.topic.clone()));
    assert_eq!(healthy.handle(&cause).await.unwrap(), Handled::Duplicate);
    assert!(rig.dead_letters().await.is_empty());
    rig.running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_events_for_one_order_never_corrupt_it() {
    const ORDERS_N: usize = 4;
    const REFUNDS: usize = 10;
    let rig = rig(32).await;
    let mut events = Vec::new();
    for o in 0..ORDERS_N {
        let id = format!("o-{o}");
        events.push(env(
            &format!("{id}:placed"),
            0,
            placed(&id, "c-1", 1000, true),
        ));
        events.push(env(&format!("{id}:paid"), 1, paid(&id, 1000)));
        events.push(env(&format!("{id}:shipped"), 2, shipped(&id)));
        for r in 0..REFUNDS {
            events.push(env(&format!("{id}:refund{r}"), 3, refunded(&id, 10)));
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut deliveries: Vec<&Envelope<OrderEvent>> = events.iter().collect();
    for _ in 0..events.len() / 5 {
        deliveries.push(&events[rng.random_range(0..events.len())]);
    }
    deliveries.shuffle(&mut rng);
    rig.send(&deliveries).await;
    rig.drained().await;

    assert!(rig.dead_letters().await.is_empty());
    let per_order = 3 + REFUNDS;
    for o in 0..ORDERS_N {
        let order = rig.order(&format!("o-{o}"));
        let mut applied = order.record.applied.clone();
        applied.sort();
        applied.dedup();
        assert_eq!(applied.len(), per_order, "each event applied once");
        assert_eq!(order.record.version, per_order as u64);
        assert_eq!(order.record.order.status, OrderStatus::Shipped);
        assert_eq!(order.record.order.refunded_cents, 10 * REFUNDS as u64);
        assert!(order.outbox.is_empty());
    }
    let analytics = rig.published("fleet-analytics").await;
    assert_eq!(
        analytics.len(),
        ORDERS_N * per_order,
        "every analytics event went out"
    );
    assert_eq!(rig.published("fleet-email").await.len(), ORDERS_N);
    let conflicts = rig.store.conflicts.load(Ordering::SeqCst);
    assert!(conflicts > 0, "the handlers did race for the orders");
    println!("{conflicts} version conflicts, each decided again");
    rig.running.stop().await;
}
