//! The pure core: from a decoded event to the counter deltas it adds, and the sum of a batch's
//! deltas per distinct counter. No I/O.
//!
//! What an event counts, in UTC buckets of its own time (`analytics.tracked`'s `timestamp`, the
//! envelope's `occurred_at` for the other types):
//! - every counted event: +1 on its name's minute, hour and day counters (the name is the
//!   tracked `name`, or the message type such as `order.placed`);
//! - `analytics.tracked`: +1 on its subject's day counter;
//! - `analytics.tracked` named [`ORDER_PAID`] / [`ORDER_REFUNDED`] (sent by the orders worker):
//!   +`amount_cents` / -`amount_cents` on the revenue counter of its `currency` and day.
//! - `email.sent` with a template: +1 on the minute, hour and day counters of the name
//!   `email.sent#template=<template>` ([`email_sent_template`]), beside `email.sent`'s own.
//!
//! Raw `order.paid` events are counted by name only: the orders worker may reject them, and it
//! emits `order_paid` for the payments it applies, so revenue is counted once, from those.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use fleet_schemas::codes::CurrencyRule;
use fleet_schemas::text::Rule;
use fleet_schemas::{AnalyticsTracked, EmailSent, Envelope, Event, FleetEvent};
use serde_json::Value;

use super::error::AnalyticsError;
use crate::table::keys;

/// The `analytics.tracked` name of an applied payment (properties `order_id`, `amount_cents`,
/// `currency`): adds to the revenue.
pub const ORDER_PAID: &str = "order_paid";
/// The `analytics.tracked` name of an applied refund: subtracts from the revenue.
pub const ORDER_REFUNDED: &str = "order_refunded";

/// The counter name of the emails sent from one template, `email.sent#template=<template>`
/// (counted per minute, hour and day like any name; `fleet counters --name` reads it).
pub fn email_sent_template(template: &str) -> String {
    format!("{}#template={template}", EmailSent::TYPE)
}

/// A time bucket of a counter, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// One minute: `2026-11-28T02:57`.
    Minute,
    /// One hour: `2026-11-28T02`.
    Hour,
    /// One day: `2026-11-28`.
    Day,
}

impl Bucket {
    /// Every bucket, shortest first.
    pub const ALL: [Bucket; 3] = [Bucket::Minute, Bucket::Hour, Bucket::Day];

    /// `minute`, `hour` or `day`, as in counter keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    /// How long one bucket lasts.
    pub fn length(self) -> TimeDelta {
        match self {
            Bucket::Minute => TimeDelta::minutes(1),
            Bucket::Hour => TimeDelta::hours(1),
            Bucket::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket that holds `t`.
    pub fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        // Truncating a UTC time to a minute, hour or day cannot overflow or fail.
        t.duration_trunc(self.length()).unwrap_or(t)
    }

    /// The bucket's name in counter keys: `2026-11-28T02:57`, `2026-11-28T02` or `2026-11-28`.
    pub fn label(self, t: DateTime<Utc>) -> String {
        let format = match self {
            Bucket::Minute => "%Y-%m-%dT%H:%M",
            Bucket::Hour => "%Y-%m-%dT%H",
            Bucket::Day => "%Y-%m-%d",
        };
        t.format(format).to_string()
    }
}

/// What a family of counters counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Series {
    /// Events of one name (a tracked name or a message type), per minute, hour and day.
    Event(String),
    /// `analytics.tracked` events of one subject, per day.
    Subject(String),
    /// Order revenue in one currency, in minor units, per day.
    Revenue(String),
}

impl Series {
    /// The buckets this series is kept in.
    pub fn buckets(&self) -> &'static [Bucket] {
        match self {
            Series::Event(_) => &Bucket::ALL,
            Series::Subject(_) | Series::Revenue(_) => &[Bucket::Day],
        }
    }

    /// The counter key of the bucket of `bucket` kind that holds `t`.
    pub fn key(&self, bucket: Bucket, t: DateTime<Utc>) -> String {
        let time = bucket.label(t);
        match self {
            Series::Event(name) => keys::event_counter(name, bucket.as_str(), &time),
            Series::Subject(subject) => keys::subject_counter(subject, bucket.as_str(), &time),
            Series::Revenue(currency) => keys::revenue_counter(currency, bucket.as_str(), &time),
        }
    }
}

/// One event's contribution: its id and the deltas it adds, one per distinct counter key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDeltas {
    /// The envelope's id: the event is counted once per id.
    pub event_id: String,
    /// Counter key and delta, sorted by key, no key twice, no zero delta.
    pub deltas: Vec<(String, i64)>,
}

impl EventDeltas {
    /// An event's deltas from any list: summed per key, zeros dropped, sorted.
    pub fn new(
        event_id: impl Into<String>,
        deltas: impl IntoIterator<Item = (String, i64)>,
    ) -> Self {
        let mut summed: BTreeMap<String, i64> = BTreeMap::new();
        for (key, delta) in deltas {
            let total = summed.entry(key).or_insert(0);
            *total = total.saturating_add(delta);
        }
        Self {
            event_id: event_id.into(),
            deltas: summed.into_iter().filter(|(_, d)| *d != 0).collect(),
        }
    }
}

/// What the worker does with one decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Add these deltas, once per event id.
    Deltas(EventDeltas),
    /// A type the worker does not count (`email.requested`): acknowledged, with this type as
    /// the reason.
    Skipped {
        /// The message type.
        event_type: &'static str,
    },
}

/// What `envelope` adds to the counters.
///
/// # Errors
/// `InvalidProperty` for an [`ORDER_PAID`] or [`ORDER_REFUNDED`] event whose `amount_cents` or
/// `currency` cannot be counted.
pub fn count(envelope: &Envelope<FleetEvent>) -> Result<Counted, AnalyticsError> {
    let id = envelope.header.id.clone();
    let at = envelope.header.occurred_at;
    let deltas = match &envelope.payload {
        FleetEvent::AnalyticsTracked(tracked) => {
            tracked_deltas(tracked, envelope.header.producer == crate::orders::PRODUCER)?
        }
        FleetEvent::OrderPlaced(_)
        | FleetEvent::OrderPaid(_)
        | FleetEvent::OrderShipped(_)
        | FleetEvent::OrderCancelled(_)
        | FleetEvent::OrderRefunded(_) => name_deltas(envelope.payload.event_type(), at),
        FleetEvent::EmailSent(sent) => sent_deltas(sent, at),
        // `email.requested`, and any type added to fleet-schemas later: not counted until
        // someone decides what it counts.
        other => {
            return Ok(Counted::Skipped {
                event_type: other.event_type(),
            });
        }
    };
    Ok(Counted::Deltas(EventDeltas::new(id, deltas)))
}

/// +1 on the minute, hour and day counters of `name` at `at`.
fn name_deltas(name: &str, at: DateTime<Utc>) -> Vec<(String, i64)> {
    let series = Series::Event(name.to_owned());
    Bucket::ALL
        .iter()
        .map(|b| (series.key(*b, at), 1))
        .collect()
}

/// `email.sent` by its type, and by its template when it has one.
fn sent_deltas(sent: &EmailSent, at: DateTime<Utc>) -> Vec<(String, i64)> {
    let mut deltas = name_deltas(EmailSent::TYPE, at);
    if let Some(template) = &sent.template {
        deltas.extend(name_deltas(&email_sent_template(template), at));
    }
    deltas
}

/// Revenue counts only from the orders worker (`from_orders`): anyone may track an event named
/// `order_paid`, only the orders worker's are payments it applied.
fn tracked_deltas(
    tracked: &AnalyticsTracked,
    from_orders: bool,
) -> Result<Vec<(String, i64)>, AnalyticsError> {
    let at = tracked.timestamp;
    let name: &str = &tracked.name;
    let mut deltas = name_deltas(name, at);
    let subject = Series::Subject(tracked.subject.as_str().to_owned());
    deltas.push((subject.key(Bucket::Day, at), 1));
    let sign = match name {
        ORDER_PAID if from_orders => 1,
        ORDER_REFUNDED if from_orders => -1,
        _ => return Ok(deltas),
    };
    let (currency, amount) = revenue(tracked)?;
    deltas.push((
        Series::Revenue(currency).key(Bucket::Day, at),
        sign * amount,
    ));
    Ok(deltas)
}

/// The currency and amount (minor units) of an order analytics event.
fn revenue(tracked: &AnalyticsTracked) -> Result<(String, i64), AnalyticsError> {
    let invalid = |property, reason: String| AnalyticsError::InvalidProperty {
        name: tracked.name.as_str().to_owned(),
        property,
        reason,
    };
    let amount = match tracked.properties.get("amount_cents") {
        None => return Err(invalid("amount_cents", "missing".into())),
        Some(v) => v
            .as_u64()
            .and_then(|a| i64::try_from(a).ok())
            .ok_or_else(|| {
                invalid(
                    "amount_cents",
                    format!("{v} is not a whole number of minor units"),
                )
            })?,
    };
    let currency = match tracked.properties.get("currency") {
        None => return Err(invalid("currency", "missing".into())),
        Some(Value::String(code)) => {
            CurrencyRule::check(code).map_err(|reason| invalid("currency", reason))?;
            code.clone()
        }
        Some(v) => return Err(invalid("currency", format!("{v} is not a string"))),
    };
    Ok((currency, amount))
}

/// The deltas of `events` summed per distinct counter key, sorted, zero sums dropped: one
/// write per counter.
pub fn sum<'a>(events: impl IntoIterator<Item = &'a EventDeltas>) -> BTreeMap<String, i64> {
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for event in events {
        for (key, delta) in &event.deltas {
            let total = totals.entry(key.clone()).or_insert(0);
            *total = total.saturating_add(*delta);
        }
    }
    totals.retain(|_, total| *total != 0);
    totals
}

#[cfg(test)]
mod tests;
