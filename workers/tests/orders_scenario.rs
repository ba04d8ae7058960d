//! The orders state machine against the scenario's model, which was written without it
//! (`workers/src/scenario`): every event of a shuffled scenario with duplicates is decided the way
//! a consumer would (a duplicate id is skipped, a rejection that may pass is tried again later,
//! up to the queue's attempts), and the orders, the applied events and the refused ones must be
//! the model's.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use fleet_schemas::Envelope;
use fleet_workers::orders::{Decision, Order, OrderEvent, decide};
use fleet_workers::scenario::{Expect, Scenario};

/// What happened to the scenario's events: the orders, the applied ids and the refused ids
/// with their labels.
struct Outcome {
    orders: BTreeMap<String, Order>,
    applied: BTreeSet<String>,
    refused: BTreeMap<String, &'static str>,
}

/// Delivers `queue` in order; a transient rejection puts the event back at the end, until it has
/// had `attempts` tries.
fn consume(scenario: &Scenario, attempts: u32) -> Outcome {
    let mut queue: std::collections::VecDeque<(Envelope<OrderEvent>, u32)> = scenario
        .publish
        .iter()
        .map(|&i| {
            let e = scenario.events[i].envelope.clone();
            let header = e.header.clone();
            let payload = OrderEvent::try_from(e.payload).unwrap();
            (Envelope { header, payload }, 1)
        })
        .collect();
    let mut out = Outcome {
        orders: BTreeMap::new(),
        applied: BTreeSet::new(),
        refused: BTreeMap::new(),
    };
    while let Some((e, attempt)) = queue.pop_front() {
        if out.applied.contains(&e.header.id) {
            continue;
        }
        let order_id = e.payload.order_id().to_owned();
        match decide(out.orders.get(&order_id), &e) {
            Ok(Decision::Applied { order, .. }) => {
                out.orders.insert(order_id, order);
                out.applied.insert(e.header.id.clone());
            }
            Ok(Decision::Unchanged) => {}
            Err(err) if err.is_transient() && attempt < attempts => {
                queue.push_back((e, attempt + 1))
            }
            Err(err) => {
                out.refused.insert(e.header.id.clone(), err.label());
            }
        }
    }
    out
}

#[test]
fn the_machine_ends_where_the_model_says_for_shuffled_scenarios() {
    for seed in 1..=20 {
        let scenario = Scenario::generate(seed, 200, 1000, 0.1);
        let out = consume(&scenario, 5);
        assert_eq!(out.orders.len(), scenario.orders.len(), "seed {seed}");
        for expected in &scenario.orders {
            let got = &out.orders[&expected.order_id];
            let facts = (got.status.as_str(), got.paid_cents(), got.refunded_cents);
            let want = (
                expected.status,
                expected.paid_cents,
                expected.refunded_cents,
            );
            assert_eq!(facts, want, "seed {seed}: {expected:?}");
            assert_eq!(got.customer_id(), expected.customer_id);
        }
        let must_apply = scenario
            .events
            .iter()
            .filter(|e| e.expect == Expect::Applied)
            .map(|e| e.envelope.header.id.clone())
            .collect::<BTreeSet<_>>();
        assert_eq!(out.applied, must_apply, "seed {seed}");
        let refused: BTreeSet<String> = out.refused.keys().cloned().collect();
        assert_eq!(refused, scenario.refused_ids(), "seed {seed}");
        let labels: BTreeSet<&str> = out.refused.values().copied().collect();
        assert!(
            labels.is_subset(&BTreeSet::from([
                "invalid_transition",
                "amount_mismatch",
                "refund_exceeds_paid",
                "payment_pending",
            ])),
            "seed {seed}: {labels:?}"
        );
    }
}
