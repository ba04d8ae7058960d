//! Every state against every event, then properties over random and shuffled histories.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet_schemas::Event;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;
use crate::orders::order::OrderStatus;

const TOTAL: u64 = 1000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap()
}

/// An envelope for `event` with id `id`, `minutes` after t0.
fn env(id: &str, minutes: i64, event: OrderEvent) -> Envelope<OrderEvent> {
    let event_type = match &event {
        OrderEvent::Placed(_) => OrderPlaced::TYPE,
        OrderEvent::Paid(_) => OrderPaid::TYPE,
        OrderEvent::Shipped(_) => OrderShipped::TYPE,
        OrderEvent::Cancelled(_) => OrderCancelled::TYPE,
        OrderEvent::Refunded(_) => OrderRefunded::TYPE,
    };
    Envelope {
        header: fleet_schemas::Header {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            version: 2,
            occurred_at: t0() + Duration::minutes(minutes),
            correlation_id: None,
            causation_id: None,
            producer: "test".to_owned(),
        },
        payload: event,
    }
}

fn placed_with(total: u64) -> OrderEvent {
    OrderEvent::Placed(
        serde_json::from_value(json!({
            "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total_cents": total,
            "items": [{"sku": "A", "quantity": 1, "unit_price_cents": total}],
            "customer_email": "ada@example.com",
        }))
        .unwrap(),
    )
}

fn paid_with(amount: u64, currency: &str) -> OrderEvent {
    OrderEvent::Paid(
        serde_json::from_value(json!({
            "order_id": "o-1", "payment_id": "p-1", "amount_cents": amount, "currency": currency,
        }))
        .unwrap(),
    )
}

fn refund_with(amount: u64, currency: &str) -> OrderEvent {
    OrderEvent::Refunded(
        serde_json::from_value(json!({
            "order_id": "o-1", "payment_id": "p-1", "amount_cents": amount, "currency": currency,
        }))
        .unwrap(),
    )
}

fn shipped() -> OrderEvent {
    OrderEvent::Shipped(
        serde_json::from_value(
            json!({"order_id": "o-1", "carrier": "dhl", "tracking_number": "T-1"}),
        )
        .unwrap(),
    )
}

fn cancelled() -> OrderEvent {
    OrderEvent::Cancelled(
        serde_json::from_value(json!({"order_id": "o-1", "reason": "customer_request"})).unwrap(),
    )
}

/// The order after applying `events` in order (each must apply).
fn state(events: &[OrderEvent]) -> Option<Order> {
    let mut order: Option<Order> = None;
    for (i, e) in events.iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        match decide(order.as_ref(), &env(&format!("s{i}"), i, e.clone())) {
            Ok(Decision::Applied { order: next, .. }) => order = Some(next),
            other => panic!("setting up with {e:?}: {other:?}"),
        }
    }
    order
}

/// `status` after the event, `=` unchanged, or the rejection's label.
fn outcome(order: Option<&Order>, event: &OrderEvent) -> String {
    match decide(order, &env("e", 60, event.clone())) {
        Ok(Decision::Applied { order, .. }) => order.status.as_str().to_owned(),
        Ok(Decision::Unchanged) => "=".to_owned(),
        Err(e) => e.label().to_owned(),
    }
}

const EVENTS: [&str; 13] = [
    "placed",
    "placed*",
    "paid",
    "paid<",
    "paid$",
    "shipped",
    "cancelled",
    "ref300",
    "ref700",
    "ref1000",
    "ref1001",
    "ref$",
    "ref0",
];

fn event(name: &str) -> OrderEvent {
    match name {
        "placed" => placed_with(TOTAL),
        "placed*" => placed_with(TOTAL + 1),
        "paid" => paid_with(TOTAL, "EUR"),
        "paid<" => paid_with(TOTAL - 100, "EUR"),
        "paid$" => paid_with(TOTAL, "USD"),
        "shipped" => shipped(),
        "cancelled" => cancelled(),
        "ref300" => refund_with(300, "EUR"),
        "ref700" => refund_with(700, "EUR"),
        "ref1000" => refund_with(1000, "EUR"),
        "ref1001" => refund_with(1001, "EUR"),
        "ref$" => refund_with(300, "USD"),
        "ref0" => refund_with(0, "EUR"),
        other => panic!("no event {other}"),
    }
}

const NF: &str = "order_not_found";
const AP: &str = "already_placed";
const IT: &str = "invalid_transition";
const PP: &str = "payment_pending";
const AM: &str = "amount_mismatch";
const CM: &str = "currency_mismatch";
const RX: &str = "refund_exceeds_paid";
const ER: &str = "empty_refund";

/// Every state (by the events that made it) against every event of [`EVENTS`], in order.
#[rustfmt::skip]
const TABLE: [(&str, &[&str], [&str; 13]); 11] = [
    //                                                   placed       placed*  paid         paid<  paid$  shipped      cancelled    ref300       ref700       ref1000      ref1001 ref$ ref0
    ("none", &[],                                        ["placed",   "placed", NF,         NF,    NF,    NF,          NF,          NF,          NF,          NF,          NF,     NF,  NF]),
    ("placed", &["placed"],                              ["=",        AP,       "paid",     AM,    CM,    PP,          "cancelled", PP,          PP,          PP,          RX,     CM,  ER]),
    ("paid", &["placed", "paid"],                        ["=",        AP,       IT,         IT,    IT,    "shipped",   "cancelled", "paid",      "paid",      "refunded",  RX,     CM,  ER]),
    ("shipped", &["placed", "paid", "shipped"],          ["=",        AP,       IT,         IT,    IT,    IT,          IT,          "shipped",   "shipped",   "refunded",  RX,     CM,  ER]),
    ("cancelled", &["placed", "cancelled"],              ["=",        AP,       "cancelled", AM,   CM,    IT,          IT,          PP,          PP,          PP,          RX,     CM,  ER]),
    ("cancelled+paid", &["placed", "cancelled", "paid"], ["=",        AP,       IT,         IT,    IT,    IT,          IT,          "cancelled", "cancelled", "refunded",  RX,     CM,  ER]),
    ("paid+ref300", &["placed", "paid", "ref300"],       ["=",        AP,       IT,         IT,    IT,    "shipped",   "cancelled", "paid",      "refunded",  RX,          RX,     CM,  ER]),
    ("shipped+ref300", &["placed", "paid", "shipped", "ref300"],
                                                         ["=",        AP,       IT,         IT,    IT,    IT,          IT,          "shipped",   "refunded",  RX,          RX,     CM,  ER]),
    ("refunded", &["placed", "paid", "ref1000"],         ["=",        AP,       IT,         IT,    IT,    "refunded",  "refunded",  RX,          RX,          RX,          RX,     CM,  ER]),
    ("refunded+shipped", &["placed", "paid", "shipped", "ref1000"],
                                                         ["=",        AP,       IT,         IT,    IT,    IT,          IT,          RX,          RX,          RX,          RX,     CM,  ER]),
    ("refunded+cancelled", &["placed", "paid", "cancelled", "ref1000"],
                                                         ["=",        AP,       IT,         IT,    IT,    IT,          IT,          RX,          RX,          RX,          RX,     CM,  ER]),
];

#[test]
fn every_state_against_every_event() {
    let mut wrong = Vec::new();
    for (name, history, expected) in TABLE {
        let events: Vec<OrderEvent> = history.iter().map(|n| event(n)).collect();
        let order = state(&events);
        for (event_name, want) in EVENTS.iter().zip(expected) {
            let got = outcome(order.as_ref(), &event(event_name));
            if got != want {
                wrong.push(format!("{name} + {event_name}: expected {want}, got {got}"));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_table_covers_every_status() {
    let statuses: std::collections::BTreeSet<OrderStatus> = TABLE
        .iter()
        .filter_map(|(_, h, _)| {
            state(&h.iter().map(|n| event(n)).collect::<Vec<_>>()).map(|o| o.status)
        })
        .collect();
    assert_eq!(statuses.len(), OrderStatus::ALL.len(), "{statuses:?}");
}

#[test]
fn an_impossible_transition_reads_as_its_reason() {
    let order = state(&[event("placed"), event("paid"), event("shipped")]);
    let err = decide(order.as_ref(), &env("late", 9, event("paid"))).unwrap_err();
    assert_eq!(err.to_string(), "invalid_transition: shipped → paid");
    assert!(!err.is_transient());
}

#[test]
fn mismatches_say_what_was_expected() {
    let order = state(&[event("placed")]);
    let err = decide(order.as_ref(), &env("x", 1, event("paid<"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "amount_mismatch: paid 900 for an order of 1000 EUR"
    );
    let err = decide(order.as_ref(), &env("x", 1, event("paid$"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "currency_mismatch: paid in USD for an order in EUR"
    );
    let order = state(&[event("placed"), event("paid"), event("ref700")]);
    let err = decide(order.as_ref(), &env("x", 1, event("ref700"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refund_exceeds_paid: refunding 700 after 700 would exceed the 1000 EUR paid"
    );
}

#[test]
fn applied_events_record_their_facts_and_times() {
    let order = state(&[
        event("placed"),
        event("paid"),
        event("shipped"),
        event("ref300"),
    ])
    .unwrap();
    assert_eq!(order.paid_cents(), TOTAL);
    assert_eq!(order.payment.as_ref().unwrap().payment_id, "p-1");
    assert_eq!(order.refunded_cents, 300);
    assert_eq!(order.shipment.as_ref().unwrap().tracking_number, "T-1");
    assert_eq!(order.placed_at, t0());
    assert_eq!(order.updated_at, t0() + Duration::minutes(3));
    // An event that happened earlier than the last one applied does not move `updated_at` back.
    let Decision::Applied { order: later, .. } =
        decide(Some(&order), &env("old", -5, event("ref300"))).unwrap()
    else {
        panic!("a second refund of 300 applies");
    };
    assert_eq!(later.updated_at, order.updated_at);
}

#[test]
fn each_applied_event_causes_its_analytics_and_placed_its_confirmation() {
    let placed = decide(None, &env("evt-1", 0, event("placed"))).unwrap();
    let Decision::Applied { order, outgoing } = placed else {
        panic!("placed applies");
    };
    let ids: Vec<&str> = outgoing.iter().map(|e| e.header.id.as_str()).collect();
    assert_eq!(ids, ["evt-1:email", "evt-1:analytics"]);
    let Decision::Applied { outgoing, .. } =
        decide(Some(&order), &env("evt-2", 1, event("paid"))).unwrap()
    else {
        panic!("paid applies");
    };
    assert_eq!(outgoing.len(), 1);
    let body = serde_json::to_value(&outgoing[0]).unwrap();
    assert_eq!(body["id"], "evt-2:analytics");
    assert_eq!(body["causation_id"], "evt-2");
    assert_eq!(body["payload"]["name"], "order_paid");
    assert_eq!(body["payload"]["properties"]["amount_cents"], TOTAL);
    assert_eq!(body["payload"]["properties"]["currency"], "EUR");
    assert_eq!(body["payload"]["properties"]["status"], "paid");
    assert_eq!(body["payload"]["timestamp"], "2026-11-26T15:01:00Z");
}

/// A random valid history: placed, maybe paid, then maybe shipped or cancelled, then refunds
/// that sum to at most the payment (and, now and then, a cancel of an unpaid order that gets
/// paid afterwards, which must then be refunded).
fn valid_history(rng: &mut StdRng) -> Vec<OrderEvent> {
    let total = rng.random_range(1..=5000);
    let mut h = vec![placed_with(total)];
    let unpaid_cancel = rng.random_bool(0.15);
    if unpaid_cancel {
        h.push(cancelled());
    }
    if unpaid_cancel || rng.random_bool(0.8) {
        h.push(paid_with(total, "EUR"));
        if !unpaid_cancel {
            match rng.random_range(0..3) {
                0 => h.push(shipped()),
                1 => h.push(cancelled()),
                _ => {}
            }
        }
        let mut left = total;
        while left > 0 && rng.random_bool(0.5) {
            let amount = rng.random_range(1..=left);
            h.push(refund_with(amount, "EUR"));
            left -= amount;
        }
    }
    h
}

/// Applies shuffled events the way a consumer does: what waits is retried on a later pass, a
/// duplicate envelope id is skipped; fails on a permanent rejection.
fn converge(events: &[Envelope<OrderEvent>]) -> Result<Option<Order>, String> {
    let mut order: Option<Order> = None;
    let mut applied: Vec<String> = Vec::new();
    let mut waiting: Vec<&Envelope<OrderEvent>> = events.iter().collect();
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut still = Vec::new();
        for e in waiting {
            if applied.contains(&e.header.id) {
                continue;
            }
            match decide(order.as_ref(), e) {
                Ok(Decision::Applied { order: next, .. }) => {
                    order = Some(next);
                    applied.push(e.header.id.clone());
                }
                Ok(Decision::Unchanged) => {}
                Err(err) if err.is_transient() => still.push(e),
                Err(err) => return Err(format!("{} was refused: {err}", e.header.id)),
            }
        }
        if still.len() == before {
            return Err(format!("{} event(s) wait forever", still.len()));
        }
        waiting = still;
    }
    Ok(order)
}

#[test]
fn shuffled_valid_histories_with_duplicates_end_where_the_ordered_one_does() {
    let mut rng = StdRng::seed_from_u64(9);
    for case in 0..300 {
        let history = valid_history(&mut rng);
        let envelopes: Vec<Envelope<OrderEvent>> = history
            .iter()
            .enumerate()
            .map(|(i, e)| env(&format!("e{i}"), i64::try_from(i).unwrap(), e.clone()))
            .collect();
        let expected = converge(&envelopes).unwrap();
        for _ in 0..10 {
            let mut shuffled = envelopes.clone();
            let dup = shuffled[rng.random_range(0..shuffled.len())].clone();
            shuffled.push(dup);
            shuffled.shuffle(&mut rng);
            let got = converge(&shuffled).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(got, expected, "case {case}: {history:?}");
        }
    }
}

/// Any event, valid or not, with small amounts so that refunds often collide.
fn any_event(rng: &mut StdRng) -> OrderEvent {
    let currency = if rng.random_bool(0.1) { "USD" } else { "EUR" };
    match rng.random_range(0..6) {
        0 => placed_with(if rng.random_bool(0.9) { 100 } else { 101 }),
        1 => paid_with(if rng.random_bool(0.8) { 100 } else { 90 }, currency),
        2 => shipped(),
        3 => cancelled(),
        _ => refund_with(rng.random_range(0..=60), currency),
    }
}

#[test]
fn refunds_never_exceed_what_was_paid_whatever_arrives() {
    let mut rng = StdRng::seed_from_u64(17);
    for _ in 0..2000 {
        let mut order = state(&[placed_with(100)]);
        let mut revenue: i128 = 0;
        for i in 0..12 {
            let e = env(&format!("r{i}"), i, any_event(&mut rng));
            let Ok(Decision::Applied {
                order: next,
                outgoing,
            }) = decide(order.as_ref(), &e)
            else {
                continue;
            };
            let o = &next;
            assert!(o.refunded_cents <= o.paid_cents(), "{o:?}");
            assert!(o.refunded_cents == 0 || o.payment.is_some(), "{o:?}");
            assert!(!(o.shipment.is_some() && o.cancellation.is_some()), "{o:?}");
            assert_eq!(o.status, o.derived_status());
            let analytics = outgoing.last().unwrap();
            let body = serde_json::to_value(analytics).unwrap();
            let amount = i128::from(
                body["payload"]["properties"]["amount_cents"]
                    .as_u64()
                    .unwrap_or(0),
            );
            match body["payload"]["name"].as_str().unwrap() {
                "order_paid" => revenue += amount,
                "order_refunded" => revenue -= amount,
                _ => {}
            }
            assert_eq!(
                revenue,
                i128::from(o.paid_cents()) - i128::from(o.refunded_cents),
                "analytics revenue follows the order"
            );
            order = Some(next);
        }
    }
}
