//! The demo's verdict: what the workers left behind against what the scenario says must be.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fleet_bus::Message;
use fleet_bus::consumer::dead_letter::DeadLetterReason;

use crate::orders::LoadedOrder;
use crate::scenario::{Expect, Scenario};

/// Every difference, in words, by kind.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// Effects that should have happened and did not (an event not applied, a counter short, a
    /// refused event not dead-lettered, a confirmation never published).
    pub lost: Vec<String>,
    /// Effects that happened more than once (an event applied twice, a counter over).
    pub double_applied: Vec<String>,
    /// Effects that should not have happened (a refused event applied, a wrong status).
    pub wrong: Vec<String>,
    /// Dead letters by their reason's kind.
    pub dead_letters: BTreeMap<String, usize>,
    /// Confirmations expected and found.
    pub confirmations: (usize, usize),
}

/// The confirmations a run produced: the ids of their `email.requested` events.
#[derive(Clone, Debug)]
pub enum Confirmations {
    /// Published for the email worker (on its queue): a request may be published twice (an
    /// outbox row flushed by two deliveries), so each must appear at least once.
    Published(Vec<String>),
    /// Sent by the email worker: each exactly once.
    Sent(Vec<String>),
}

impl Checked {
    /// Whether everything is as the model says.
    pub fn ok(&self) -> bool {
        self.lost.is_empty() && self.double_applied.is_empty() && self.wrong.is_empty()
    }
}

/// Compares the stores and queues with the scenario's model.
pub fn check(
    scenario: &Scenario,
    orders: &[LoadedOrder],
    counters: &HashMap<String, i64>,
    dead_letters: &[Message],
    confirmations: &Confirmations,
) -> Checked {
    let mut c = Checked::default();
    check_orders(scenario, orders, &mut c);
    check_counters(scenario, counters, &mut c);
    check_dead_letters(scenario, dead_letters, &mut c);
    check_confirmations(scenario, confirmations, &mut c);
    c
}

fn check_orders(scenario: &Scenario, orders: &[LoadedOrder], c: &mut Checked) {
    let by_id: HashMap<&str, &LoadedOrder> = orders
        .iter()
        .map(|o| (o.record.order.order_id(), o))
        .collect();
    for (i, want) in scenario.orders.iter().enumerate() {
        let Some(got) = by_id.get(want.order_id.as_str()) else {
            c.lost.push(format!("order {} missing", want.order_id));
            continue;
        };
        let record = &got.record;
        let expected: BTreeSet<&str> = scenario
            .events
            .iter()
            .filter(|e| e.order == i && e.expect == Expect::Applied)
            .map(|e| e.envelope.header.id.as_str())
            .collect();
        let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &record.applied {
            *applied.entry(id.as_str()).or_default() += 1;
        }
        for id in &expected {
            if !applied.contains_key(id) {
                c.lost
                    .push(format!("order {}: event {id} not applied", want.order_id));
            }
        }
        for (id, n) in &applied {
            if *n > 1 {
                c.double_applied.push(format!(
                    "order {}: event {id} applied {n} times",
                    want.order_id
                ));
            }
            if !expected.contains(id) {
                c.wrong.push(format!(
                    "order {}: event {id} applied but must be refused",
                    want.order_id
                ));
            }
        }
        let order = &record.order;
        let (status, paid, refunded) = (
            order.status.as_str(),
            order.paid_cents(),
            order.refunded_cents,
        );
        if (status, paid, refunded) != (want.status, want.paid_cents, want.refunded_cents) {
            c.wrong.push(format!(
                "order {}: {status}, paid {paid}, refunded {refunded}; expected {}, paid {}, refunded {}",
                want.order_id, want.status, want.paid_cents, want.refunded_cents
            ));
        }
    }
}

/// The counter series of the emails sent: counted at each send's time, which no model knows, so
/// each is checked by its total per bucket size.
const EMAIL_SENT_SERIES: [&str; 2] = [
    "event#email.sent#",
    "event#email.sent#template=order_confirmation#",
];

fn check_counters(scenario: &Scenario, counters: &HashMap<String, i64>, c: &mut Checked) {
    let expected = scenario.expected_counters();
    let keys: BTreeSet<&String> = expected.keys().chain(counters.keys()).collect();
    let sent_series = |key: &str| {
        EMAIL_SENT_SERIES.iter().any(|s| {
            key.strip_prefix(s).is_some_and(|rest| {
                ["minute#", "hour#", "day#"]
                    .iter()
                    .any(|b| rest.starts_with(b))
            })
        })
    };
    let sent_totals: Vec<(String, i64)> = EMAIL_SENT_SERIES
        .iter()
        .flat_map(|series| {
            ["minute#", "hour#", "day#"].map(|bucket| {
                let prefix = format!("{series}{bucket}");
                let total = counters
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v)
                    .sum();
                (prefix, total)
            })
        })
        .collect();
    // Counted only when the email worker ran: then once per confirmation sent.
    if sent_totals.iter().any(|(_, t)| *t != 0) {
        let want = i64::try_from(scenario.confirmations().len()).unwrap_or(i64::MAX);
        for (prefix, got) in sent_totals {
            match got.cmp(&want) {
                std::cmp::Ordering::Equal => {}
                std::cmp::Ordering::Less => c
                    .lost
                    .push(format!("counters {prefix}*: {got} in all, expected {want}")),
                std::cmp::Ordering::Greater => c
                    .double_applied
                    .push(format!("counters {prefix}*: {got} in all, expected {want}")),
            }
        }
    }
    for key in keys.into_iter().filter(|k| !sent_series(k)) {
        let want = expected.get(key).copied().unwrap_or(0);
        let got = counters.get(key).copied().unwrap_or(0);
        match got.cmp(&want) {
            std::cmp::Ordering::Equal => {}
            std::cmp::Ordering::Less => c
                .lost
                .push(format!("counter {key}: {got}, expected {want}")),
            std::cmp::Ordering::Greater => c
                .double_applied
                .push(format!("counter {key}: {got}, expected {want}")),
        }
    }
}

fn envelope_ids(messages: &[Message]) -> Vec<(String, &Message)> {
    messages
        .iter()
        .filter_map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).ok()?;
            Some((v.get("id")?.as_str()?.to_owned(), m))
        })
        .collect()
}

fn check_dead_letters(scenario: &Scenario, dead_letters: &[Message], c: &mut Checked) {
    let refused = scenario.refused_ids();
    let mut seen = BTreeSet::new();
    for (id, m) in envelope_ids(dead_letters) {
        let kind =
            DeadLetterReason::from_message(m).map_or_else(|| "no reason".to_owned(), |r| r.kind);
        *c.dead_letters.entry(kind).or_default() += 1;
        if !refused.contains(&id) {
            c.wrong
                .push(format!("event {id} dead-lettered but must apply"));
        }
        seen.insert(id);
    }
    for id in refused.difference(&seen) {
        c.lost
            .push(format!("event {id} must be dead-lettered and is not"));
    }
}

fn check_confirmations(scenario: &Scenario, confirmations: &Confirmations, c: &mut Checked) {
    let expected: BTreeMap<String, String> = scenario
        .events
        .iter()
        .filter(|e| e.envelope.payload.event_type() == "order.placed")
        .map(|e| {
            let placed = e.envelope.header.id.clone();
            (crate::orders::outgoing::confirmation_id(&placed), placed)
        })
        .collect();
    let (ids, exactly_once) = match confirmations {
        Confirmations::Published(ids) => (ids, false),
        Confirmations::Sent(ids) => (ids, true),
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    for (id, placed) in &expected {
        match seen.get(id.as_str()) {
            None => c.lost.push(format!("no confirmation for {placed}")),
            Some(n) if *n > 1 && exactly_once => c
                .double_applied
                .push(format!("the confirmation for {placed} was sent {n} times")),
            Some(_) => {}
        }
    }
    for id in seen.keys().filter(|id| !expected.contains_key(**id)) {
        c.wrong
            .push(format!("confirmation {id} answers no placed order"));
    }
    c.confirmations = (
        expected.len(),
        expected
            .keys()
            .filter(|id| seen.contains_key(id.as_str()))
            .count(),
    );
}
