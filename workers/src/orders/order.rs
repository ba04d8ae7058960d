//! An order as the orders worker keeps it: what was placed, and the facts that followed (a
//! payment, refunds, a shipment, a cancellation). Its status is derived from those facts, so the
//! same facts give the same status in whatever order their events arrived.

use std::fmt;

use chrono::{DateTime, Utc};
use fleet_schemas::{CancelReason, Carrier, OrderPlaced};
use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, not paid.
    Placed,
    /// Paid, not shipped (possibly partly refunded).
    Paid,
    /// Paid and shipped (possibly partly refunded).
    Shipped,
    /// Cancelled before shipping (a payment, if one came, is still to be refunded in full).
    Cancelled,
    /// Its payment was refunded in full: no more money can move.
    Refunded,
}

impl OrderStatus {
    /// Every status, in declaration order.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    /// The stored and printed name, such as `paid`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which order event something is about, by its verb (`order.paid` is `paid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `order.placed`.
    Placed,
    /// `order.paid`.
    Paid,
    /// `order.shipped`.
    Shipped,
    /// `order.cancelled`.
    Cancelled,
    /// `order.refunded`.
    Refunded,
}

impl EventKind {
    /// The verb, such as `paid`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Placed => "placed",
            EventKind::Paid => "paid",
            EventKind::Shipped => "shipped",
            EventKind::Cancelled => "cancelled",
            EventKind::Refunded => "refunded",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order's payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The payment provider's id.
    pub payment_id: String,
    /// What was paid, in the currency's minor unit (always the order's total).
    pub amount_cents: u64,
}

/// The order's shipment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// Who carries it.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// Why the order was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The reason.
    pub reason: CancelReason,
    /// More words on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// What was placed (ids, lines, total, currency, the customer's address).
    #[serde(flatten)]
    pub placed: OrderPlaced,
    /// Where it stands, derived from the facts below.
    pub status: OrderStatus,
    /// Its payment, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// The sum of its refunds, in the currency's minor unit.
    pub refunded_cents: u64,
    /// Its shipment, once shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment: Option<Shipment>,
    /// Its cancellation, once cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    /// When it was placed (the `order.placed` event's `occurred_at`).
    pub placed_at: DateTime<Utc>,
    /// The latest `occurred_at` of the events applied to it.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// A new order from its `order.placed` event.
    pub fn new(placed: OrderPlaced, at: DateTime<Utc>) -> Self {
        Self {
            placed,
            status: OrderStatus::Placed,
            payment: None,
            refunded_cents: 0,
            shipment: None,
            cancellation: None,
            placed_at: at,
            updated_at: at,
        }
    }

    /// The order's id.
    pub fn order_id(&self) -> &str {
        self.placed.order_id.as_str()
    }

    /// The customer's id.
    pub fn customer_id(&self) -> &str {
        self.placed.customer_id.as_str()
    }

    /// What was paid, 0 before the payment.
    pub fn paid_cents(&self) -> u64 {
        self.payment.as_ref().map_or(0, |p| p.amount_cents)
    }

    /// The status the facts give: a full refund ends the order whatever came before, a
    /// cancellation outranks the payment, a shipment outranks the payment.
    pub fn derived_status(&self) -> OrderStatus {
        let paid = self.paid_cents();
        if self.payment.is_some() && self.refunded_cents > 0 && self.refunded_cents >= paid {
            OrderStatus::Refunded
        } else if self.cancellation.is_some() {
            OrderStatus::Cancelled
        } else if self.shipment.is_some() {
            OrderStatus::Shipped
        } else if self.payment.is_some() {
            OrderStatus::Paid
        } else {
            OrderStatus::Placed
        }
    }
}
