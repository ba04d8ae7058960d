//! A realistic mix of events for the analytics worker (several names and subjects, order
//! analytics in two currencies, raw order events, emails sent with and without a template, an
//! email request it does not count), with
//! duplicates and bad messages, and the counters it should produce, computed here from the
//! counter rules as the issue states them, not by the worker's code.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde_json::{Value, json};

const NAMES: [&str; 4] = ["page_viewed", "checkout_started", "search", "signup"];

/// Messages to send and what they must produce.
#[derive(Debug, Default)]
pub struct Mix {
    /// Bodies to send, in order: every event, copies of some, and the bad ones.
    pub bodies: Vec<String>,
    /// Counter key → value (zeros left out).
    pub expected: BTreeMap<String, i64>,
    /// Distinct events counted.
    pub counted: usize,
    /// Copies of counted events sent again.
    pub duplicates: usize,
    /// Messages of a type the worker does not count.
    pub skipped: usize,
    /// The dead-letter labels the bad messages must get, sorted.
    pub bad_labels: Vec<&'static str>,
}

impl Mix {
    fn count(&mut self, key: String, delta: i64) {
        *self.expected.entry(key).or_insert(0) += delta;
    }

    /// +1 on the minute, hour and day counters of `name` at `at`.
    fn name(&mut self, name: &str, at: DateTime<Utc>) {
        self.count(
            format!("event#{name}#minute#{}", at.format("%Y-%m-%dT%H:%M")),
            1,
        );
        self.count(format!("event#{name}#hour#{}", at.format("%Y-%m-%dT%H")), 1);
        self.count(format!("event#{name}#day#{}", at.format("%Y-%m-%d")), 1);
    }

    fn day(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d").to_string()
    }

    /// The expected counters without zeros.
    pub fn nonzero(&self) -> BTreeMap<String, i64> {
        self.expected
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

fn fixture(event_type: &str) -> Value {
    let text = match event_type {
        "order.placed" => include_str!("../../../schemas/tests/fixtures/order.placed.v2.json"),
        "order.paid" => include_str!("../../../schemas/tests/fixtures/order.paid.v2.json"),
        "email.requested" => {
            include_str!("../../../schemas/tests/fixtures/email.requested.v2.json")
        }
        "email.sent" => include_str!("../../../schemas/tests/fixtures/email.sent.v1.json"),
        other => panic!("no fixture for {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// `n` events starting at 23:58 UTC, `spacing_ms` apart (so the mix crosses midnight), every
/// `duplicate_every`-th one sent twice (0: none), and, with `bad`, three bad messages.
pub fn mix(n: usize, spacing_ms: i64, duplicate_every: usize, bad: bool) -> Mix {
    let start: DateTime<Utc> = "2026-11-28T23:58:00Z".parse().unwrap();
    let paris = FixedOffset::east_opt(3600).unwrap();
    let mut m = Mix::default();
    for i in 0..n {
        let at = start + TimeDelta::milliseconds(spacing_ms * i as i64);
        // Some timestamps are written with an offset: bucketed in UTC all the same.
        let stamp = if i % 3 == 0 {
            at.with_timezone(&paris).to_rfc3339()
        } else {
            at.to_rfc3339()
        };
        let id = format!("evt-{i:05}");
        let subject = format!("u-{}", i % 7);
        let currency = if i % 2 == 0 { "EUR" } else { "USD" };
        let envelope = |event_type: &str, payload: Value| {
            // The orders worker's producer name: revenue counts only its payments.
            json!({"id": id, "type": event_type, "version": 2, "occurred_at": stamp,
                   "producer": "orders", "payload": payload})
        };
        let tracked = |name: &str, properties: Value| {
            envelope(
                "analytics.tracked",
                json!({"name": name, "subject": subject, "properties": properties,
                       "timestamp": stamp}),
            )
        };
        let body = match i % 10 {
            0..=4 => {
                let name = NAMES[i % NAMES.len()];
                m.name(name, at);
                m.count(format!("subject#{subject}#day#{}", Mix::day(at)), 1);
                tracked(name, json!({"source": "web"}))
            }
            5 | 6 => {
                let (name, sign, amount) = if i % 10 == 5 {
                    ("order_paid", 1, 1000 + i as i64)
                } else {
                    ("order_refunded", -1, 100 + i as i64)
                };
                m.name(name, at);
                m.count(format!("subject#{subject}#day#{}", Mix::day(at)), 1);
                m.count(
                    format!("revenue#{currency}#day#{}", Mix::day(at)),
                    sign * amount,
                );
                tracked(
                    name,
                    json!({"order_id": format!("o-{i}"), "amount_cents": amount,
                                     "currency": currency}),
                )
            }
            7 | 8 => {
                let event_type = if i % 10 == 7 {
                    "order.placed"
                } else {
                    "order.paid"
                };
                m.name(event_type, at);
                let mut body = fixture(event_type);
                body["id"] = json!(id);
                body["occurred_at"] = json!(stamp);
                body
            }
            _ if i % 20 == 9 => {
                let mut body = fixture("email.requested");
                body["id"] = json!(id);
                body
            }
            // An email sent: counted by its type, and by its template when it has one.
            _ if i % 20 == 19 => {
                m.name("email.sent", at);
                let mut body = fixture("email.sent");
                body["id"] = json!(id);
                body["occurred_at"] = json!(stamp);
                if i % 40 == 19 {
                    m.name("email.sent#template=order_confirmation", at);
                } else {
                    body["payload"].as_object_mut().unwrap().remove("template");
                }
                body
            }
            _ => {
                m.name("page_viewed", at);
                m.count(format!("subject#{subject}#day#{}", Mix::day(at)), 1);
                tracked("page_viewed", json!({}))
            }
        };
        let skipped = body["type"] == "email.requested";
        let copies = if duplicate_every > 0 && scatter(i).is_multiple_of(duplicate_every) {
            2
        } else {
            1
        };
        for copy in 0..copies {
            m.bodies.push(body.to_string());
            match (skipped, copy) {
                (true, _) => m.skipped += 1,
                (false, 0) => m.counted += 1,
                (false, _) => m.duplicates += 1,
            }
        }
    }
    if bad {
        add_bad(&mut m);
    }
    m
}

/// A fixed scattering of indices, so copies fall on every kind of event.
fn scatter(i: usize) -> usize {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
}

fn add_bad(m: &mut Mix) {
    m.bodies.push("{\"id\": \"broken".to_owned());
    // A type this version does not know (a newer producer's): acknowledged and skipped.
    let mut unknown = fixture("order.paid");
    unknown["type"] = json!("order.exploded");
    m.bodies.push(unknown.to_string());
    m.skipped += 1;
    let bad_currency = json!({"id": "bad-currency", "type": "analytics.tracked", "version": 2,
        "occurred_at": "2026-11-28T12:00:00Z", "producer": "orders",
        "payload": {"name": "order_paid", "subject": "u-1", "timestamp": "2026-11-28T12:00:00Z",
                    "properties": {"order_id": "o-1", "amount_cents": 5, "currency": "eur"}}});
    m.bodies.push(bad_currency.to_string());
    m.bad_labels = vec!["invalid_field", "invalid_json"];
}
