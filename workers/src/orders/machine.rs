//! The orders state machine: an order (or none) and one event in, the new order and the events
//! to publish out, or the reason the event cannot apply. Pure: no I/O, no clock, no randomness,
//! so a redelivered event decides the same thing again.
//!
//! An order is a set of facts (placed, a payment, refunds, a shipment, a cancellation) and its
//! status is derived from them ([`Order::derived_status`]). Each event adds one fact, under these
//! rules:
//!
//! | event | applies when | never applies when (`invalid_transition` etc.) | waits (retried) when |
//! |---|---|---|---|
//! | placed | no order yet; the same payload again changes nothing | another payload for the id (`already_placed`) | |
//! | paid | not paid yet, even if cancelled (the payment is then to be refunded) | already paid; another currency; an amount other than the total | no order yet |
//! | shipped | paid, not shipped, not cancelled | shipped or cancelled | no order yet; not paid yet |
//! | cancelled | not shipped, not cancelled | shipped or cancelled | no order yet |
//! | refunded | paid, and all refunds together at most the payment | another currency; a refund of 0; refunds above the total | no order yet; not paid yet |
//!
//! Because facts only accumulate and each rule is about facts, not arrival order, every valid
//! history of an order (placed, then maybe paid, then shipped or cancelled, refunds up to the
//! payment) ends in the same state whatever order its events arrive in, provided the waiting
//! ones are retried: a shipment or a cancellation that arrives after a full refund is recorded
//! without changing the `refunded` status. The tests check this for shuffled histories.

use fleet_schemas::{
    Envelope, FleetEvent, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, OrderShipped,
};

use super::error::OrderError;
use super::order::{Cancellation, EventKind, Order, Payment, Shipment};
use super::outgoing;

/// One order event, of any of the five types.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderEvent {
    /// `order.placed`.
    Placed(OrderPlaced),
    /// `order.paid`.
    Paid(OrderPaid),
    /// `order.shipped`.
    Shipped(OrderShipped),
    /// `order.cancelled`.
    Cancelled(OrderCancelled),
    /// `order.refunded`.
    Refunded(OrderRefunded),
}

impl OrderEvent {
    /// The order the event is about.
    pub fn order_id(&self) -> &str {
        match self {
            OrderEvent::Placed(e) => &e.order_id,
            OrderEvent::Paid(e) => &e.order_id,
            OrderEvent::Shipped(e) => &e.order_id,
            OrderEvent::Cancelled(e) => &e.order_id,
            OrderEvent::Refunded(e) => &e.order_id,
        }
    }

    /// Which event it is.
    pub fn kind(&self) -> EventKind {
        match self {
            OrderEvent::Placed(_) => EventKind::Placed,
            OrderEvent::Paid(_) => EventKind::Paid,
            OrderEvent::Shipped(_) => EventKind::Shipped,
            OrderEvent::Cancelled(_) => EventKind::Cancelled,
            OrderEvent::Refunded(_) => EventKind::Refunded,
        }
    }
}

macro_rules! order_event_from {
    ($($variant:ident($ty:ty)),+) => {$(
        impl From<$ty> for OrderEvent {
            fn from(e: $ty) -> Self {
                OrderEvent::$variant(e)
            }
        }
    )+};
}

order_event_from!(
    Placed(OrderPlaced),
    Paid(OrderPaid),
    Shipped(OrderShipped),
    Cancelled(OrderCancelled),
    Refunded(OrderRefunded)
);

impl From<OrderEvent> for FleetEvent {
    fn from(e: OrderEvent) -> Self {
        match e {
            OrderEvent::Placed(e) => e.into(),
            OrderEvent::Paid(e) => e.into(),
            OrderEvent::Shipped(e) => e.into(),
            OrderEvent::Cancelled(e) => e.into(),
            OrderEvent::Refunded(e) => e.into(),
        }
    }
}

/// An order event from any Fleet event; any other type is handed back.
impl TryFrom<FleetEvent> for OrderEvent {
    type Error = FleetEvent;

    fn try_from(e: FleetEvent) -> Result<Self, FleetEvent> {
        Ok(match e {
            FleetEvent::OrderPlaced(e) => e.into(),
            FleetEvent::OrderPaid(e) => e.into(),
            FleetEvent::OrderShipped(e) => e.into(),
            FleetEvent::OrderCancelled(e) => e.into(),
            FleetEvent::OrderRefunded(e) => e.into(),
            other => return Err(other),
        })
    }
}

/// What an event does to its order.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one decision per event, moved once; boxing the order would buy nothing"
)]
pub enum Decision {
    /// The event applies: the order becomes `order`, and `outgoing` are to be published.
    Applied {
        /// The order after the event.
        order: Order,
        /// The events it causes, with ids derived from the cause's.
        outgoing: Vec<Envelope<FleetEvent>>,
    },
    /// The event says nothing new (an `order.placed` sent again with a new id).
    Unchanged,
}

/// Decides what `cause` does to `order` (`None`: the order does not exist yet).
///
/// # Errors
/// Why the event cannot apply: some reasons may pass ([`OrderError::is_transient`]), the others
/// never will.
pub fn decide(order: Option<&Order>, cause: &Envelope<OrderEvent>) -> Result<Decision, OrderError> {
    let event = &cause.payload;
    let next = match (order, event) {
        (None, OrderEvent::Placed(e)) => Order::new(e.clone(), cause.header.occurred_at),
        (Some(o), OrderEvent::Placed(e)) if o.placed == *e => return Ok(Decision::Unchanged),
        (Some(o), OrderEvent::Placed(_)) => {
            return Err(OrderError::AlreadyPlaced {
                order_id: o.order_id().to_owned(),
            });
        }
        (None, _) => {
            return Err(OrderError::OrderNotFound {
                order_id: event.order_id().to_owned(),
                event: event.kind(),
            });
        }
        (Some(o), OrderEvent::Paid(e)) => paid(o, e)?,
        (Some(o), OrderEvent::Shipped(e)) => shipped(o, e)?,
        (Some(o), OrderEvent::Cancelled(e)) => cancelled(o, e)?,
        (Some(o), OrderEvent::Refunded(e)) => refunded(o, e)?,
    };
    let order = touched(next, cause);
    let outgoing = outgoing::caused_by(cause, &order);
    Ok(Decision::Applied { order, outgoing })
}

/// The order with its status derived again and its `updated_at` moved to the cause's time, if
/// later (events arrive out of order; the latest time wins whatever the order).
fn touched(mut order: Order, cause: &Envelope<OrderEvent>) -> Order {
    order.status = order.derived_status();
    order.updated_at = order.updated_at.max(cause.header.occurred_at);
    order
}

fn invalid(order: &Order, event: EventKind) -> OrderError {
    OrderError::InvalidTransition {
        from: order.status,
        event,
    }
}

fn same_currency(order: &Order, event: EventKind, currency: &str) -> Result<(), OrderError> {
    if order.placed.currency.as_str() == currency {
        return Ok(());
    }
    Err(OrderError::CurrencyMismatch {
        event,
        expected: order.placed.currency.to_string(),
        got: currency.to_owned(),
    })
}

fn paid(order: &Order, e: &OrderPaid) -> Result<Order, OrderError> {
    if order.payment.is_some() {
        return Err(invalid(order, EventKind::Paid));
    }
    same_currency(order, EventKind::Paid, &e.currency)?;
    let total = order.placed.total_cents;
    if e.amount_cents != total {
        return Err(OrderError::AmountMismatch {
            total,
            paid: e.amount_cents,
            currency: order.placed.currency.to_string(),
        });
    }
    let mut next = order.clone();
    next.payment = Some(Payment {
        payment_id: e.payment_id.to_string(),
        amount_cents: e.amount_cents,
    });
    Ok(next)
}

fn shipped(order: &Order, e: &OrderShipped) -> Result<Order, OrderError> {
    if order.shipment.is_some() || order.cancellation.is_some() {
        return Err(invalid(order, EventKind::Shipped));
    }
    if order.payment.is_none() {
        return Err(OrderError::PaymentPending {
            from: order.status,
            event: EventKind::Shipped,
        });
    }
    let mut next = order.clone();
    next.shipment = Some(Shipment {
        carrier: e.carrier,
        tracking_number: e.tracking_number.to_string(),
    });
    Ok(next)
}

fn cancelled(order: &Order, e: &OrderCancelled) -> Result<Order, OrderError> {
    if order.shipment.is_some() || order.cancellation.is_some() {
        return Err(invalid(order, EventKind::Cancelled));
    }
    let mut next = order.clone();
    next.cancellation = Some(Cancellation {
        reason: e.reason,
        note: e.note.as_ref().map(ToString::to_string),
    });
    Ok(next)
}

fn refunded(order: &Order, e: &OrderRefunded) -> Result<Order, OrderError> {
    same_currency(order, EventKind::Refunded, &e.currency)?;
    if e.amount_cents == 0 {
        return Err(OrderError::EmptyRefund);
    }
    // A payment always equals the total, so refunds above the total can never apply, paid or not.
    let limit = order.placed.total_cents;
    let after = order.refunded_cents.checked_add(e.amount_cents);
    if after.is_none_or(|after| after > limit) {
        return Err(OrderError::RefundExceedsPaid {
            amount: e.amount_cents,
            refunded: order.refunded_cents,
            paid: limit,
            currency: order.placed.currency.to_string(),
        });
    }
    if order.payment.is_none() {
        return Err(OrderError::PaymentPending {
            from: order.status,
            event: EventKind::Refunded,
        });
    }
    let mut next = order.clone();
    next.refunded_cents += e.amount_cents;
    Ok(next)
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
