//! `fleet run` end to end on moto: the orders and analytics workers as operators run them,
//! processes started, killed and stopped by signal, fed a seeded scenario of 1,000 order events
//! for 200 orders (10 % duplicates, shuffled, a few impossible) through SNS. The table, the
//! counters, the dead letters and the confirmations must equal the scenario's model exactly.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::fleet_run::{Deployment, Ended};
use common::model::check_against_model;
use fleet_workers::scenario::Scenario;
use rand::{Rng, SeedableRng};

/// Receives before a dead letter: enough for an event that arrives before its order (shuffled
/// over the whole run) to wait for it (see the README on sizing the retries of early events).
/// With the orders worker's retries here (2 s base, 30 s cap, equal jitter) the guaranteed wait
/// is the sum of the shortest delays before attempts 2 to 16: 1+2+4+8 + 11 × 15 s = 180 s. The
/// lag it must cover is the time to work once through the whole shuffled backlog on moto: in CI
/// with 12 receives (120 s) some refunds ran out of receives before their order's payment.
const MAX_RECEIVES: u32 = 16;

/// One test at a time: moto is a single Python process, and two fleets working through 1,000
/// events each against it at once slow each other down (both together take as long as one after
/// the other) until early events outlive their receives.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const DRAIN_LIMIT: Duration = Duration::from_secs(420);
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A drain after SIGTERM: exit code 0, "drained in time", every received message settled.
fn assert_drained(name: &str, ended: &Ended) {
    assert_eq!(
        ended.code,
        Some(0),
        "{name}: exit {:?}\n{}\n{}",
        ended.code,
        ended.stdout,
        ended.stderr
    );
    assert!(ended.stdout.contains("drained in time"), "{}", ended.stdout);
    assert!(ended.stdout.contains("abandoned 0"), "{}", ended.stdout);
}

/// `Operation calls N` from the process's AWS call table.
fn calls(stdout: &str, service: &str, operation: &str) -> u64 {
    stdout
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(service) && w.next() == Some(operation)
        })
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

const WRITES: [&str; 5] = [
    "TransactWriteItems",
    "BatchWriteItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_shuffled_order_events_end_exactly_as_the_model_says() {
    let _one = ONE_AT_A_TIME.lock().await;
    let d = Deployment::provision("e2e", MAX_RECEIVES).await;
    let scenario = Scenario::generate(11, 200, 1000, 0.1);
    // One process per worker, so each one's AWS calls are its own.
    let orders = d.start(&["orders"], 1);
    let analytics = d.start(&["analytics"], 2);
    d.publish(&scenario).await;
    d.wait_until_drained(&[d.orders(), d.analytics()], DRAIN_LIMIT)
        .await;

    let orders_ended = orders.terminate(STOP_LIMIT);
    let analytics_ended = analytics.terminate(STOP_LIMIT);
    assert_drained("orders", &orders_ended);
    assert_drained("analytics", &analytics_ended);
    // Nothing left invisible: a drained process settles or releases everything it held.
    for q in [d.orders(), d.analytics()] {
        let c = fleet_bus::scenarios::support::counts(&d.transport, &q).await;
        assert_eq!(c.in_flight, 0, "{q}: {c:?}");
    }
    check_against_model(&d, &scenario).await;

    let applied = scenario.applied() as f64;
    let order_writes: u64 = WRITES
        .iter()
        .map(|op| calls(&orders_ended.stdout, "DynamoDB", op))
        .sum();
    let per_transition = order_writes as f64 / applied;
    let analytics_transactions = calls(&analytics_ended.stdout, "DynamoDB", "TransactWriteItems");
    let analytics_events = scenario.publish.len() as f64 + applied;
    println!(
        "orders: {order_writes} DynamoDB write calls for {applied} applied transitions = {per_transition:.2} per transition\n{}",
        orders_ended.stdout
    );
    println!(
        "analytics: {analytics_transactions} TransactWriteItems for about {analytics_events} deliveries = {:.3} per event\n{}",
        analytics_transactions as f64 / analytics_events,
        analytics_ended.stdout
    );
    assert!(
        per_transition <= 3.0,
        "{per_transition:.2} write calls per transition"
    );
}

/// Waits until the orders queue has messages in flight (handlers at work).
async fn wait_for_in_flight(d: &Deployment) {
    for _ in 0..200 {
        let c = fleet_bus::scenarios::support::counts(&d.transport, &d.orders()).await;
        if c.in_flight > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message was ever in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_by_sigterm_and_killed_three_times_the_fleet_still_ends_as_the_model_says() {
    let _one = ONE_AT_A_TIME.lock().await;
    let d = Deployment::provision("e2e-kill", MAX_RECEIVES).await;
    let scenario = Scenario::generate(12, 200, 1000, 0.1);
    let seed = 12;
    println!("kill seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let first = d.start(&[], 0);
    d.publish(&scenario).await;
    // SIGTERM while handlers are busy: the drain ends in time, every message received is settled
    // (acked, retried with its backoff, dead-lettered or released), none abandoned.
    wait_for_in_flight(&d).await;
    let ended = first.terminate(STOP_LIMIT);
    assert_drained("fleet (SIGTERM mid-run)", &ended);
    println!("SIGTERM mid-run:\n{}", ended.stdout);
    let mut process = d.start(&[], 4);
    for n in 1..=3 {
        let after = Duration::from_millis(rng.random_range(2_000..8_000));
        tokio::time::sleep(after).await;
        assert!(
            process.running(),
            "fleet run died on its own:\n{}",
            process.logs()
        );
        process.kill();
        println!("SIGKILL {n} after {after:?}");
        process = d.start(&[], 4 + n);
    }
    d.wait_until_drained(&[d.orders(), d.analytics()], DRAIN_LIMIT)
        .await;
    let ended = process.terminate(STOP_LIMIT);
    assert_drained("fleet", &ended);
    check_against_model(&d, &scenario).await;
}
