//! The orders worker's handler: decode, skip what was applied, decide, write conditionally with
//! the outbox, publish, clear. Errors become outcomes in one place (`From<OrderError> for
//! HandlerError`, in `error.rs`).

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::consumer::{Delivery, HandlerError, MessageHandler};
use fleet_bus::failpoint;
use fleet_bus::producer::BatchProducer;
use fleet_schemas::{
    Envelope, Event, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, OrderShipped, Producer,
    Router,
};
use rand::Rng;

use super::error::OrderError;
use super::machine::{self, Decision, OrderEvent};
use super::order::Order;
use super::outgoing::PRODUCER;
use super::store::{OrderRecord, OrderStore, OutboxRow, StoreError};

/// Load-decide-write rounds per delivery before a contended order is retried later.
pub const MAX_ROUNDS: u32 = 5;
/// The longest pause before another round, scaled by the round (jittered so that contending
/// handlers spread out).
const ROUND_PAUSE: Duration = Duration::from_millis(20);

/// What a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The event changed the order; its outgoing events were published.
    Applied,
    /// The event was applied before (same envelope id): nothing changed, and any outbox rows
    /// still pending were published.
    Duplicate,
    /// The event said nothing new (an identical `order.placed` with another id).
    Unchanged,
}

/// The orders worker: consumes `order.*` events, keeps orders in an [`OrderStore`], and
/// publishes the events they cause.
#[derive(Clone)]
pub struct OrdersWorker {
    store: Arc<dyn OrderStore>,
    events: Producer,
}

impl OrdersWorker {
    /// A worker keeping orders in `store` and publishing what they cause through `events`
    /// (normally `BatchProducer::to_topic("fleet-events", publisher)`).
    pub fn new(store: Arc<dyn OrderStore>, events: BatchProducer) -> Self {
        Self {
            store,
            events: Producer::new(events, PRODUCER),
        }
    }

    /// The consumer handler: routes the five `order.*` types, and dead-letters anything else
    /// and anything that does not decode, with the schema error's label.
    pub fn handler(&self) -> MessageHandler {
        let router = Router::new("orders");
        let router = route::<OrderPlaced>(router, self.clone());
        let router = route::<OrderPaid>(router, self.clone());
        let router = route::<OrderShipped>(router, self.clone());
        let router = route::<OrderCancelled>(router, self.clone());
        route::<OrderRefunded>(router, self.clone()).into_handler()
    }

    /// Handles one decoded event: applies it once, retrying a lost version race up to
    /// [`MAX_ROUNDS`] times, and publishes what it caused; a duplicate publishes whatever the
    /// order still has pending instead.
    ///
    /// # Errors
    /// Why it was not applied; see [`OrderError`] for which ones are retried.
    pub async fn handle(&self, cause: &Envelope<OrderEvent>) -> Result<Handled, OrderError> {
        let order_id = cause.payload.order_id();
        for round in 1..=MAX_ROUNDS {
            if round > 1 {
                let pause = ROUND_PAUSE.mul_f64(f64::from(round) * rand::rng().random::<f64>());
                tokio::time::sleep(pause).await;
            }
            let loaded = self.store.load(order_id).await?;
            if let Some(l) = &loaded {
                // Rows still pending were committed by a delivery that died or failed between
                // its commit and its publish (its message may be in the dead-letter queue by
                // now): any event of the order publishes them. A row its own handler is
                // publishing right now goes out twice, with the same id, which consumers
                // deduplicate.
                self.flush(&l.record.order, &l.outbox).await?;
                if l.record.has_applied(&cause.header.id) {
                    return Ok(Handled::Duplicate);
                }
            }
            let record = loaded.map(|l| l.record);
            match machine::decide(record.as_ref().map(|r| &r.order), cause)? {
                Decision::Unchanged => return Ok(Handled::Unchanged),
                Decision::Applied { order, outgoing } => {
                    let next = next_record(record, order, &cause.header.id);
                    let rows: Vec<OutboxRow> = outgoing
                        .into_iter()
                        .map(|envelope| OutboxRow { envelope })
                        .collect();
                    match self.store.apply(&next, &rows).await {
                        Ok(()) => {
                            // Committed, not yet published: the outbox covers a crash here.
                            failpoint::hit(failpoint::ORDERS_AFTER_COMMIT).await;
                            self.flush(&next.order, &rows).await?;
                            return Ok(Handled::Applied);
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(OrderError::Contended {
            order_id: order_id.to_owned(),
            attempts: MAX_ROUNDS,
        })
    }

    /// Publishes outbox rows and clears those that went out; fails if any did not.
    async fn flush(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), OrderError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            let message =
                self.events
                    .message_for(&row.envelope)
                    .map_err(|e| OrderError::Publish {
                        failed: 1,
                        total: rows.len(),
                        code: e.label().to_owned(),
                        message: e.to_string(),
                        refused: true,
                    })?;
            messages.push(message);
        }
        let report = self.events.send_messages(messages, |_| {}).await;
        let sent: Vec<OutboxRow> = report
            .sent
            .iter()
            .filter_map(|(i, _)| rows.get(*i).cloned())
            .collect();
        if !sent.is_empty() {
            self.store.clear_outbox(order, &sent).await?;
        }
        match report.failed.first() {
            None => Ok(()),
            Some((_, e)) => Err(OrderError::Publish {
                failed: report.failed.len(),
                total: rows.len(),
                code: e.code.clone(),
                message: e.message.clone(),
                refused: e.sender_fault,
            }),
        }
    }
}

/// The record after applying event `event_id`: one version up, the event's id remembered.
fn next_record(previous: Option<OrderRecord>, order: Order, event_id: &str) -> OrderRecord {
    let (version, mut applied) = previous.map_or((0, Vec::new()), |r| (r.version, r.applied));
    applied.push(event_id.to_owned());
    OrderRecord {
        order,
        version: version + 1,
        applied,
    }
}

fn route<E>(router: Router, worker: OrdersWorker) -> Router
where
    E: Event,
    OrderEvent: From<E>,
{
    router.on::<E, _, _>(move |envelope: Envelope<E>, _delivery: Delivery| {
        let worker = worker.clone();
        async move {
            let cause = envelope.map(OrderEvent::from);
            let handled = worker.handle(&cause).await;
            log(&cause, &handled);
            handled.map(|_| ()).map_err(HandlerError::from)
        }
    })
}

fn log(cause: &Envelope<OrderEvent>, handled: &Result<Handled, OrderError>) {
    let order_id = cause.payload.order_id();
    let event = cause.payload.kind().as_str();
    match handled {
        Ok(outcome) => {
            tracing::debug!(order_id, event, id = %cause.header.id, ?outcome, "order event handled")
        }
        Err(e) => {
            tracing::info!(order_id, event, id = %cause.header.id, reason = e.label(), error = %e, "order event not applied")
        }
    }
}

impl std::fmt::Debug for OrdersWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrdersWorker").finish_non_exhaustive()
    }
}
