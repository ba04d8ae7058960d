//! Order events for the orders worker's tests (typed envelopes with chosen ids and times, and the
//! messages a producer would send for them), and test doubles: a topic that can be switched
//! off, one that never answers, and a store that lets concurrent handlers interleave.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet_bus::{BusError, EntryResult, OutgoingMessage, Publisher, SendReceipt};
use fleet_schemas::{Envelope, FleetEvent, Header};
use fleet_workers::orders::{
    Decision, LoadedOrder, MemoryOrderStore, Order, OrderEvent, OrderRecord, OrderStore, OutboxRow,
    StoreError, decide,
};
use rand::Rng;
use serde_json::json;

/// The time of the first event.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap()
}

/// An envelope for `event` with envelope id `id`, `minutes` after [`t0`].
pub fn env(id: &str, minutes: i64, event: OrderEvent) -> Envelope<OrderEvent> {
    let event_type = FleetEvent::from(event.clone()).event_type();
    Envelope {
        header: Header {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            version: 2,
            occurred_at: t0() + Duration::minutes(minutes),
            correlation_id: None,
            causation_id: None,
            producer: "checkout".to_owned(),
        },
        payload: event,
    }
}

/// `order.placed` for `order` by `customer`, of `total` EUR cents, with an address or not.
pub fn placed(order: &str, customer: &str, total: u64, email: bool) -> OrderEvent {
    let mut p = json!({
        "order_id": order, "customer_id": customer, "currency": "EUR", "total_cents": total,
        "items": [{"sku": "TEE", "quantity": 1, "unit_price_cents": total}],
    });
    if email {
        p["customer_email"] = json!(format!("{customer}@example.com"));
    }
    OrderEvent::Placed(serde_json::from_value(p).unwrap())
}

/// `order.paid` of `amount` EUR cents.
pub fn paid(order: &str, amount: u64) -> OrderEvent {
    OrderEvent::Paid(
        serde_json::from_value(
            json!({"order_id": order, "payment_id": format!("pay-{order}"),
                                      "amount_cents": amount, "currency": "EUR"}),
        )
        .unwrap(),
    )
}

/// `order.shipped`.
pub fn shipped(order: &str) -> OrderEvent {
    OrderEvent::Shipped(
        serde_json::from_value(
            json!({"order_id": order, "carrier": "dhl", "tracking_number": format!("T-{order}")}),
        )
        .unwrap(),
    )
}

/// `order.cancelled`.
pub fn cancelled(order: &str) -> OrderEvent {
    OrderEvent::Cancelled(
        serde_json::from_value(json!({"order_id": order, "reason": "customer_request"})).unwrap(),
    )
}

/// `order.refunded` of `amount` EUR cents.
pub fn refunded(order: &str, amount: u64) -> OrderEvent {
    OrderEvent::Refunded(
        serde_json::from_value(
            json!({"order_id": order, "payment_id": format!("pay-{order}"),
                                      "amount_cents": amount, "currency": "EUR"}),
        )
        .unwrap(),
    )
}

/// The message a Fleet producer sends for `envelope` (body and `type` attributes).
pub fn message(envelope: &Envelope<OrderEvent>) -> OutgoingMessage {
    let envelope = envelope.clone().map(FleetEvent::from);
    OutgoingMessage {
        body: serde_json::to_string(&envelope).unwrap(),
        attributes: envelope.attributes(),
        ..OutgoingMessage::default()
    }
}

/// The record and outbox rows after `cause` applies to `previous`.
pub fn next(
    previous: Option<&OrderRecord>,
    cause: &Envelope<OrderEvent>,
) -> (OrderRecord, Vec<OutboxRow>) {
    let Decision::Applied { order, outgoing } = decide(previous.map(|r| &r.order), cause).unwrap()
    else {
        panic!("{} changes nothing", cause.header.id);
    };
    let mut applied = previous.map(|r| r.applied.clone()).unwrap_or_default();
    applied.push(cause.header.id.clone());
    let record = OrderRecord {
        order,
        version: previous.map_or(1, |r| r.version + 1),
        applied,
    };
    let rows = outgoing
        .into_iter()
        .map(|envelope| OutboxRow { envelope })
        .collect();
    (record, rows)
}

/// A topic that refuses every publish while it is down (as a throttled or unreachable SNS would).
pub struct Switch {
    pub inner: Arc<dyn Publisher>,
    pub down: AtomicBool,
    pub refused: AtomicUsize,
}

#[async_trait]
impl Publisher for Switch {
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(BusError::Api {
                resource: "fleet-events".into(),
                operation: "PublishBatch",
                code: "ServiceUnavailable".into(),
                message: "the topic is down for the test".into(),
                retryable: true,
                source: None,
            });
        }
        self.inner.publish_batch(messages).await
    }
}

/// A memory store that yields to other tasks around each call, so concurrent handlers on one
/// thread interleave between load and write; it counts the version conflicts.
#[derive(Default)]
pub struct Interleaving {
    pub inner: MemoryOrderStore,
    pub conflicts: AtomicUsize,
}

async fn shuffle_tasks() {
    let n = rand::rng().random_range(0..4);
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

#[async_trait]
impl OrderStore for Interleaving {
    async fn load(&self, order_id: &str) -> Result<Option<LoadedOrder>, StoreError> {
        shuffle_tasks().await;
        self.inner.load(order_id).await
    }

    async fn apply(&self, next: &OrderRecord, outbox: &[OutboxRow]) -> Result<(), StoreError> {
        shuffle_tasks().await;
        let result = self.inner.apply(next, outbox).await;
        if matches!(result, Err(StoreError::Conflict { .. })) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    async fn clear_outbox(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), StoreError> {
        shuffle_tasks().await;
        self.inner.clear_outbox(order, rows).await
    }
}

/// A topic whose publish never returns: the process dies while waiting for it.
pub struct Stall;

#[async_trait]
impl Publisher for Stall {
    async fn publish_batch(
        &self,
        _: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        std::future::pending().await
    }
}
