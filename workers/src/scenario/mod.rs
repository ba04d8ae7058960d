//! A reproducible stream of order events for the demo and the end-to-end tests: orders whose
//! stories end the same whatever order their events arrive in (standard queues reorder), a few
//! impossible events among them, and duplicates, shuffled, from a seed.
//!
//! Each story knows what must come of it, written down here without the orders worker's code:
//! the expected order and, for each event, whether it must be applied or
//! dead-lettered. A story never holds two events that race (a payment and a cancellation), so
//! its outcome is the same for every arrival order, given enough attempts.

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use fleet_schemas::{Envelope, FleetEvent, Header};
pub mod model;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What must become of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// It changes the order.
    Applied,
    /// It can never apply: dead-lettered (with `invalid_transition`, `amount_mismatch`,
    /// `refund_exceeds_paid`, ...).
    Refused,
}

/// One distinct event of the scenario.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The event in its envelope (deterministic id and time).
    pub envelope: Envelope<FleetEvent>,
    /// Must it apply?
    pub expect: Expect,
    /// The index of its order in [`Scenario::orders`].
    pub order: usize,
}

/// How an order's story goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Story {
    /// Placed, nothing else.
    Placed,
    /// Placed and paid.
    Paid,
    /// Placed, paid, shipped.
    Shipped,
    /// Placed, then cancelled.
    Cancelled,
    /// Placed, paid, shipped, then refunded in parts that add up to less than was paid.
    PartlyRefunded,
    /// Placed, paid, shipped, then refunded in full (in parts).
    Refunded,
    /// Placed, cancelled, and a shipment that can never apply.
    ShippedAfterCancel,
    /// Placed, and a payment of the wrong amount.
    WrongAmount,
    /// Placed, paid, and a refund of more than was paid.
    OverRefund,
}

impl Story {
    const WEIGHTED: [(Story, u32); 9] = [
        (Story::Placed, 5),
        (Story::Paid, 10),
        (Story::Shipped, 25),
        (Story::Cancelled, 10),
        (Story::PartlyRefunded, 20),
        (Story::Refunded, 15),
        (Story::ShippedAfterCancel, 5),
        (Story::WrongAmount, 5),
        (Story::OverRefund, 5),
    ];

    fn pick(rng: &mut StdRng) -> Story {
        let total: u32 = Self::WEIGHTED.iter().map(|(_, w)| w).sum();
        let mut at = rng.random_range(0..total);
        for (story, w) in Self::WEIGHTED {
            if at < w {
                return story;
            }
            at -= w;
        }
        Story::Shipped
    }
}

/// One order as its story leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedOrder {
    /// Its id.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Where a confirmation goes.
    pub email: String,
    /// `placed`, `paid`, `shipped`, `cancelled` or `refunded`.
    pub status: &'static str,
    /// What was ordered, in cents.
    pub total_cents: u64,
    /// The currency.
    pub currency: &'static str,
    /// Paid, in cents.
    pub paid_cents: u64,
    /// Refunded so far, in cents.
    pub refunded_cents: u64,
    /// Its story.
    pub story: Story,
}

/// The whole scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// The distinct events.
    pub events: Vec<Planned>,
    /// What to publish, in order: indexes into `events`; duplicates appear twice.
    pub publish: Vec<usize>,
    /// The orders.
    pub orders: Vec<ExpectedOrder>,
}

/// The producer name on the scenario's events.
pub const PRODUCER: &str = "scenario";
const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];

impl Scenario {
    /// `orders` orders with about `events` publishes in all, `duplicates` of them (a fraction)
    /// repeats of earlier ones, shuffled; the same seed gives the same scenario.
    pub fn generate(seed: u64, orders: usize, events: usize, duplicates: f64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let distinct_target = ((events as f64) * (1.0 - duplicates)).round() as usize;
        let mut out = Scenario {
            seed,
            events: Vec::new(),
            publish: Vec::new(),
            orders: Vec::new(),
        };
        // Spread over two days, so minute, hour and day buckets all vary (and midnight UTC is
        // crossed).
        let start = Utc
            .with_ymd_and_hms(2026, 11, 27, 20, 0, 0)
            .single()
            .unwrap_or_default();
        for i in 0..orders {
            let story = Story::pick(&mut rng);
            let at = start + Span::minutes(rng.random_range(0..(28 * 60)));
            out.add_story(&mut rng, seed, i, story, at);
        }
        // More partial refunds until there are enough distinct events (each story's refunds stay
        // below what was paid, so any arrival order still applies them all).
        while out.events.len() < distinct_target {
            let Some(i) = out.refundable(&mut rng) else {
                break;
            };
            out.add_partial_refund(seed, i);
        }
        let distinct = out.events.len();
        let mut publish: Vec<usize> = (0..distinct).collect();
        let repeats = events.saturating_sub(distinct);
        for _ in 0..repeats {
            publish.push(rng.random_range(0..distinct));
        }
        publish.shuffle(&mut rng);
        out.publish = publish;
        out
    }

    /// Waves published one after another, as producers keep publishing through a long run,
    /// merged into one scenario to check the end state against. Each wave has its own seed,
    /// hence its own order and event ids; its events are shuffled within the wave only, so an
    /// event never arrives long before its order however long the run. The merged publish order
    /// is wave after wave; `seed` is the first wave's.
    pub fn merge(waves: &[Scenario]) -> Scenario {
        let mut out = Scenario {
            seed: waves.first().map_or(0, |w| w.seed),
            events: Vec::new(),
            publish: Vec::new(),
            orders: Vec::new(),
        };
        for wave in waves {
            let (events, orders) = (out.events.len(), out.orders.len());
            out.events.extend(wave.events.iter().map(|e| Planned {
                order: e.order + orders,
                ..e.clone()
            }));
            out.publish.extend(wave.publish.iter().map(|i| i + events));
            out.orders.extend(wave.orders.iter().cloned());
        }
        out
    }

    fn refundable(&self, rng: &mut StdRng) -> Option<usize> {
        let candidates: Vec<usize> = self
            .orders
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.story == Story::PartlyRefunded && o.paid_cents - o.refunded_cents > 1
            })
            .map(|(i, _)| i)
            .collect();
        (!candidates.is_empty()).then(|| candidates[rng.random_range(0..candidates.len())])
    }

    fn add_story(
        &mut self,
        rng: &mut StdRng,
        seed: u64,
        i: usize,
        story: Story,
        at: DateTime<Utc>,
    ) {
        let order_id = format!("o-{seed}-{i:04}");
        let customer_id = format!("c-{}", rng.random_range(0..(self.orders.len() / 3 + 20)));
        let currency = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
        let quantity: u64 = rng.random_range(1..4);
        let unit: u64 = rng.random_range(5..200) * 100;
        let total = quantity * unit;
        let email = format!("{customer_id}@example.com");
        self.orders.push(ExpectedOrder {
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            email: email.clone(),
            status: "placed",
            total_cents: total,
            currency,
            paid_cents: 0,
            refunded_cents: 0,
            story,
        });
        self.push(i, Expect::Applied, at, json!({
            "type": "order.placed",
            "payload": {"order_id": order_id, "customer_id": customer_id, "currency": currency,
                        "total_cents": total, "customer_email": email,
                        "items": [{"sku": format!("sku-{}", unit / 100), "quantity": quantity, "unit_price_cents": unit}]}
        }));
        let paid = |s: &mut Self, n: i64, amount: u64, expect| {
            s.push(i, expect, at + Span::minutes(n), json!({"type": "order.paid", "payload":
                {"order_id": order_id, "payment_id": format!("pay-{i}-{n}"), "amount_cents": amount, "currency": currency}}));
        };
        match story {
            Story::Placed => {}
            Story::Paid => paid(self, 3, total, Expect::Applied),
            Story::Shipped | Story::PartlyRefunded | Story::Refunded => {
                paid(self, 3, total, Expect::Applied);
                self.push(i, Expect::Applied, at + Span::minutes(90), json!({"type": "order.shipped", "payload":
                    {"order_id": order_id, "carrier": "dhl", "tracking_number": format!("trk-{i}")}}));
                match story {
                    Story::PartlyRefunded => self.add_partial_refund(seed, i),
                    Story::Refunded => {
                        let half = total / 2;
                        self.push_refund(i, half, Expect::Applied);
                        self.push_refund(i, total - half, Expect::Applied);
                    }
                    _ => {}
                }
            }
            Story::Cancelled | Story::ShippedAfterCancel => {
                self.push(
                    i,
                    Expect::Applied,
                    at + Span::minutes(5),
                    json!({"type": "order.cancelled", "payload":
                    {"order_id": order_id, "reason": "customer_request"}}),
                );
                if story == Story::ShippedAfterCancel {
                    self.push(i, Expect::Refused, at + Span::minutes(60), json!({"type": "order.shipped", "payload":
                        {"order_id": order_id, "carrier": "ups", "tracking_number": format!("trk-{i}")}}));
                }
            }
            Story::WrongAmount => paid(self, 3, total + 1, Expect::Refused),
            Story::OverRefund => {
                paid(self, 3, total, Expect::Applied);
                self.push_refund(i, total + 100, Expect::Refused);
            }
        }
        self.orders[i].status = final_status(&self.orders[i]);
    }

    fn add_partial_refund(&mut self, _seed: u64, i: usize) {
        let o = &self.orders[i];
        // A tenth of what is left, at least a cent: the parts never reach the paid amount.
        let left = o.paid_cents - o.refunded_cents;
        let amount = (left / 10).max(1);
        if amount < left {
            self.push_refund(i, amount, Expect::Applied);
        }
    }

    fn push_refund(&mut self, i: usize, amount: u64, expect: Expect) {
        let n = self.events.iter().filter(|e| e.order == i).count();
        let o = &self.orders[i];
        let at = self
            .events
            .iter()
            .rev()
            .find(|e| e.order == i)
            .map(|e| e.envelope.header.occurred_at)
            .unwrap_or_default()
            + Span::minutes(30);
        let body = json!({"type": "order.refunded", "payload": {"order_id": o.order_id,
            "payment_id": format!("refund-{i}-{n}"), "amount_cents": amount, "currency": o.currency}});
        self.push(i, expect, at, body);
    }

    fn push(&mut self, order: usize, expect: Expect, at: DateTime<Utc>, spec: Value) {
        let n = self.events.iter().filter(|e| e.order == order).count();
        let event = event_of(&spec);
        let o = &mut self.orders[order];
        if expect == Expect::Applied {
            match &event {
                FleetEvent::OrderPaid(p) => o.paid_cents += p.amount_cents,
                FleetEvent::OrderRefunded(r) => o.refunded_cents += r.amount_cents,
                _ => {}
            }
        }
        let envelope = Envelope {
            header: Header {
                id: format!("evt-{}-{n}", o.order_id),
                event_type: event.event_type().to_owned(),
                version: event.version(),
                occurred_at: at,
                correlation_id: None,
                causation_id: None,
                producer: PRODUCER.to_owned(),
            },
            payload: event,
        };
        self.events.push(Planned {
            envelope,
            expect,
            order,
        });
        let last = self.orders[order].clone();
        self.orders[order].status = final_status(&last);
    }
}

/// The status an order's applied events leave it in.
fn final_status(o: &ExpectedOrder) -> &'static str {
    let cancelled = matches!(o.story, Story::Cancelled | Story::ShippedAfterCancel);
    let shipped = matches!(
        o.story,
        Story::Shipped | Story::PartlyRefunded | Story::Refunded
    );
    if cancelled {
        "cancelled"
    } else if o.paid_cents > 0 && o.refunded_cents == o.paid_cents {
        "refunded"
    } else if shipped {
        "shipped"
    } else if o.paid_cents > 0 {
        "paid"
    } else {
        "placed"
    }
}

/// A typed event from `{"type": ..., "payload": ...}`.
fn event_of(spec: &Value) -> FleetEvent {
    let payload = spec["payload"].clone();
    let parsed = match spec["type"].as_str() {
        Some("order.placed") => serde_json::from_value(payload).map(FleetEvent::OrderPlaced),
        Some("order.paid") => serde_json::from_value(payload).map(FleetEvent::OrderPaid),
        Some("order.shipped") => serde_json::from_value(payload).map(FleetEvent::OrderShipped),
        Some("order.cancelled") => serde_json::from_value(payload).map(FleetEvent::OrderCancelled),
        _ => serde_json::from_value(payload).map(FleetEvent::OrderRefunded),
    };
    parsed.expect("the scenario's events are valid by construction")
}

#[cfg(test)]
mod tests;
