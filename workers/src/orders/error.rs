//! Everything that can stop the orders worker from applying an event, and the one place where
//! each becomes a retry or a dead letter.

use fleet_bus::consumer::HandlerError;

use super::order::{EventKind, OrderStatus};
use super::store::StoreError;

/// Why an order event was not applied. The state machine's rejections start with their label
/// (`invalid_transition: shipped → paid`), which is also the dead-letter kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The event came before its `order.placed` (standard queues reorder): retried.
    #[error("order_not_found: order {order_id} does not exist (yet) for its {event} event")]
    OrderNotFound {
        /// The order.
        order_id: String,
        /// The event that needs it.
        event: EventKind,
    },
    /// The event can never apply to the order as it stands.
    #[error("invalid_transition: {from} → {event}")]
    InvalidTransition {
        /// The order's status.
        from: OrderStatus,
        /// The event.
        event: EventKind,
    },
    /// A shipment or a refund came before the payment it needs: retried, since the payment's
    /// event may still be on its way.
    #[error("payment_pending: {from} → {event} waits for the order's payment")]
    PaymentPending {
        /// The order's status.
        from: OrderStatus,
        /// The event.
        event: EventKind,
    },
    /// A payment that is not the order's total.
    #[error("amount_mismatch: paid {paid} for an order of {total} {currency}")]
    AmountMismatch {
        /// The order's total.
        total: u64,
        /// What the payment says.
        paid: u64,
        /// The order's currency.
        currency: String,
    },
    /// A payment or refund in another currency than the order's.
    #[error("currency_mismatch: {event} in {got} for an order in {expected}")]
    CurrencyMismatch {
        /// The event.
        event: EventKind,
        /// The order's currency.
        expected: String,
        /// The event's currency.
        got: String,
    },
    /// Refunds that would together exceed what was paid.
    #[error(
        "refund_exceeds_paid: refunding {amount} after {refunded} would exceed the {paid} {currency} paid"
    )]
    RefundExceedsPaid {
        /// This refund.
        amount: u64,
        /// Refunded before it.
        refunded: u64,
        /// The order's total, which its payment equals.
        paid: u64,
        /// The order's currency.
        currency: String,
    },
    /// A refund of nothing.
    #[error("empty_refund: a refund of 0 moves no money")]
    EmptyRefund,
    /// A second `order.placed` for an order, with other contents than the first.
    #[error("already_placed: order {order_id} was placed with other contents")]
    AlreadyPlaced {
        /// The order.
        order_id: String,
    },
    /// Other events for the order won every write, try after try: retried later.
    #[error("order_contended: order {order_id} changed under each of {attempts} attempts")]
    Contended {
        /// The order.
        order_id: String,
        /// Load-decide-write rounds tried.
        attempts: u32,
    },
    /// The order store failed.
    #[error("the order store failed")]
    Store(#[from] StoreError),
    /// Publishing the outgoing events failed (they stay in the outbox and go out on the next
    /// delivery).
    #[error("publishing {failed} of {total} outgoing event(s) failed: {code}: {message}")]
    Publish {
        /// Events not published.
        failed: usize,
        /// Events to publish.
        total: usize,
        /// The first failure's code.
        code: String,
        /// The first failure's text.
        message: String,
        /// Whether the destination refused them (a later try would be refused too).
        refused: bool,
    },
}

impl OrderError {
    /// The dead-letter kind and metric label.
    pub fn label(&self) -> &'static str {
        match self {
            OrderError::OrderNotFound { .. } => "order_not_found",
            OrderError::InvalidTransition { .. } => "invalid_transition",
            OrderError::PaymentPending { .. } => "payment_pending",
            OrderError::AmountMismatch { .. } => "amount_mismatch",
            OrderError::CurrencyMismatch { .. } => "currency_mismatch",
            OrderError::RefundExceedsPaid { .. } => "refund_exceeds_paid",
            OrderError::EmptyRefund => "empty_refund",
            OrderError::AlreadyPlaced { .. } => "already_placed",
            OrderError::Contended { .. } => "order_contended",
            OrderError::Store(StoreError::Corrupt { .. }) => "order_corrupt",
            OrderError::Store(StoreError::Conflict { .. }) => "order_contended",
            OrderError::Store(_) => "store_unavailable",
            OrderError::Publish { refused: true, .. } => "publish_refused",
            OrderError::Publish { .. } => "publish_unavailable",
        }
    }

    /// Whether a later attempt may succeed: the order or its payment may still arrive, a
    /// dependency may come back, a contended order may calm down.
    pub fn is_transient(&self) -> bool {
        match self {
            OrderError::OrderNotFound { .. }
            | OrderError::PaymentPending { .. }
            | OrderError::Contended { .. } => true,
            OrderError::Store(e) => !matches!(e, StoreError::Corrupt { .. }),
            // A publish only follows a commit: the transition is applied and its events wait in
            // the outbox. Dead-lettering the message now would leave them there with a reason
            // that says the event failed, so even a refused publish (a missing permission, a
            // deleted topic) is retried while an operator fixes it.
            OrderError::Publish { .. } => true,
            OrderError::InvalidTransition { .. }
            | OrderError::AmountMismatch { .. }
            | OrderError::CurrencyMismatch { .. }
            | OrderError::RefundExceedsPaid { .. }
            | OrderError::EmptyRefund
            | OrderError::AlreadyPlaced { .. } => false,
        }
    }
}

/// The one rule: what may succeed later is retried with the engine's backoff (and, once the
/// attempts are spent, dead-lettered with the same label); a rule the event breaks is
/// dead-lettered at once with its reason.
impl From<OrderError> for HandlerError {
    fn from(e: OrderError) -> Self {
        let label = e.label();
        if e.is_transient() {
            HandlerError::transient(e).with_label(label)
        } else {
            HandlerError::permanent(e).with_label(label)
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_bus::consumer::FailureKind;

    use super::*;

    #[test]
    fn rejections_read_as_their_label_and_reason() {
        let e: HandlerError = OrderError::InvalidTransition {
            from: OrderStatus::Shipped,
            event: EventKind::Paid,
        }
        .into();
        assert_eq!(e.kind(), FailureKind::Permanent);
        assert_eq!(e.label(), "invalid_transition");
        assert_eq!(e.cause_text(), "invalid_transition: shipped → paid");
    }

    #[test]
    fn what_may_arrive_later_is_retried() {
        let e: HandlerError = OrderError::OrderNotFound {
            order_id: "o-1".into(),
            event: EventKind::Paid,
        }
        .into();
        assert_eq!(e.kind(), FailureKind::Transient);
        assert_eq!(e.label(), "order_not_found");
        let e: HandlerError = OrderError::PaymentPending {
            from: OrderStatus::Placed,
            event: EventKind::Shipped,
        }
        .into();
        assert_eq!(e.kind(), FailureKind::Transient);
        assert_eq!(
            e.cause_text(),
            "payment_pending: placed → shipped waits for the order's payment"
        );
    }

    #[test]
    fn store_failures_are_transient_unless_corrupt_and_publish_failures_always() {
        let unavailable: HandlerError = OrderError::Store(StoreError::Unavailable {
            operation: "TransactWriteItems",
            source: "connection reset".into(),
        })
        .into();
        assert_eq!(unavailable.kind(), FailureKind::Transient);
        assert_eq!(unavailable.label(), "store_unavailable");
        let corrupt: HandlerError = OrderError::Store(StoreError::Corrupt {
            order_id: "o".into(),
            reason: "no status".into(),
        })
        .into();
        assert_eq!(corrupt.kind(), FailureKind::Permanent);
        assert_eq!(corrupt.label(), "order_corrupt");
        let publish = |refused| OrderError::Publish {
            failed: 1,
            total: 2,
            code: "c".into(),
            message: "m".into(),
            refused,
        };
        assert_eq!(
            HandlerError::from(publish(false)).kind(),
            FailureKind::Transient
        );
        assert_eq!(HandlerError::from(publish(true)).label(), "publish_refused");
        // Published only after a commit: a refused publish is retried too, never dead-lettered
        // with its events stranded in the outbox.
        assert_eq!(
            HandlerError::from(publish(true)).kind(),
            FailureKind::Transient
        );
    }
}
