//! What a scenario must leave behind, computed from the stories alone (not from the workers'
//! code): the orders, the downstream events, the dead letters and the analytics counters.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fleet_schemas::FleetEvent;

use super::{Expect, Scenario};

/// Counter key → value, in the analytics worker's key format (`workers/src/table/keys.rs`
/// documents the item keys; these are the counter names inside them).
pub type Counters = BTreeMap<String, i64>;

/// The counters of one event name at a time: minute, hour and day buckets in UTC.
fn bump_name(c: &mut Counters, name: &str, at: DateTime<Utc>) {
    for key in [
        format!("event#{name}#minute#{}", at.format("%Y-%m-%dT%H:%M")),
        format!("event#{name}#hour#{}", at.format("%Y-%m-%dT%H")),
        format!("event#{name}#day#{}", at.format("%Y-%m-%d")),
    ] {
        *c.entry(key).or_default() += 1;
    }
}

impl Scenario {
    /// The ids of the events that must be dead-lettered.
    pub fn refused_ids(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .filter(|e| e.expect == Expect::Refused)
            .map(|e| e.envelope.header.id.clone())
            .collect()
    }

    /// How many events must apply.
    pub fn applied(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.expect == Expect::Applied)
            .count()
    }

    /// The order ids that must get a confirmation email (every placed order: all have an address).
    pub fn confirmations(&self) -> BTreeSet<String> {
        self.orders.iter().map(|o| o.order_id.clone()).collect()
    }

    /// The analytics counters after every event was counted once: each order event by its type,
    /// and each applied transition's `analytics.tracked` (`order_<kind>`, subject the customer),
    /// with revenue per currency and day from payments less refunds.
    pub fn expected_counters(&self) -> Counters {
        let mut c = Counters::new();
        for e in &self.events {
            let at = e.envelope.header.occurred_at;
            bump_name(&mut c, e.envelope.payload.event_type(), at);
            if e.expect != Expect::Applied {
                continue;
            }
            let order = &self.orders[e.order];
            let kind = e.envelope.payload.event_type().trim_start_matches("order.");
            let name = format!("order_{kind}");
            bump_name(&mut c, &name, at);
            *c.entry(format!(
                "subject#{}#day#{}",
                order.customer_id,
                at.format("%Y-%m-%d")
            ))
            .or_default() += 1;
            let revenue = match &e.envelope.payload {
                FleetEvent::OrderPaid(p) => Some(p.amount_cents as i64),
                FleetEvent::OrderRefunded(r) => Some(-(r.amount_cents as i64)),
                _ => None,
            };
            if let Some(cents) = revenue {
                *c.entry(format!(
                    "revenue#{}#day#{}",
                    order.currency,
                    at.format("%Y-%m-%d")
                ))
                .or_default() += cents;
            }
        }
        c
    }
}
