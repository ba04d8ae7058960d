//! Where orders live: a small trait, [`OrderStore`], with an in-memory implementation here and a
//! DynamoDB one in `dynamo.rs`; both pass one conformance suite (`workers/tests/orders_store.rs`).
//!
//! A write is conditional on the order's version, and commits the order together with the
//! events it causes (the outbox), so either both happen or neither does. Publishing the outbox
//! happens after the commit; the rows stay until [`OrderStore::clear_outbox`], so a crash in
//! between leaves them for the next delivery to publish.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use fleet_schemas::{Envelope, FleetEvent};

use super::order::Order;

/// A boxed error from a store's backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An order as stored: the order, its version, and the ids of the events applied to it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRecord {
    /// The order.
    pub order: Order,
    /// Starts at 1 when the order is placed and grows by one with each applied event.
    pub version: u64,
    /// The envelope ids of the events applied to it, oldest first: a redelivered event is
    /// recognised by its id and applied only once.
    pub applied: Vec<String>,
}

impl OrderRecord {
    /// Whether the event with this envelope id was applied to the order.
    pub fn has_applied(&self, event_id: &str) -> bool {
        self.applied.iter().any(|id| id == event_id)
    }
}

/// One event waiting in the outbox to be published.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// The event, with its deterministic id.
    pub envelope: Envelope<FleetEvent>,
}

impl OutboxRow {
    /// The event's id.
    pub fn id(&self) -> &str {
        &self.envelope.header.id
    }
}

/// An order with the outbox rows it has not published yet.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedOrder {
    /// The order as stored.
    pub record: OrderRecord,
    /// Events committed with it and not yet cleared after publishing, in id order.
    pub outbox: Vec<OutboxRow>,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The order is not at the version the write expected (someone else wrote first): load it
    /// again and decide again.
    #[error("order {order_id} is no longer at version {expected}")]
    Conflict {
        /// The order.
        order_id: String,
        /// The version the write expected (0: that the order did not exist).
        expected: u64,
    },
    /// The backend failed or could not be reached.
    #[error("{operation} failed")]
    Unavailable {
        /// The backend operation, such as `TransactWriteItems`.
        operation: &'static str,
        /// What the backend said.
        #[source]
        source: BoxError,
    },
    /// A stored order or outbox row cannot be read back.
    #[error("stored order {order_id} cannot be read: {reason}")]
    Corrupt {
        /// The order.
        order_id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Orders with their versions, applied event ids and outboxes.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// The order with this id and its pending outbox rows, or `None` when there is none (or, on
    /// an eventually consistent index, none visible yet).
    ///
    /// # Errors
    /// `Unavailable`, or `Corrupt` when what is stored cannot be read.
    async fn load(&self, order_id: &str) -> Result<Option<LoadedOrder>, StoreError>;

    /// Writes `next` and its outbox rows in one atomic step, if the stored order is at
    /// `next.version - 1` (version 1: if there is no order with that id yet).
    ///
    /// # Errors
    /// `Conflict` when the stored version is another one (nothing was written), `Unavailable`.
    async fn apply(&self, next: &OrderRecord, outbox: &[OutboxRow]) -> Result<(), StoreError>;

    /// Deletes published outbox rows of `order` (rows already gone are fine).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn clear_outbox(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), StoreError>;
}

/// Orders in memory, for the embedded transport and tests: one lock makes each write atomic.
#[derive(Debug, Default)]
pub struct MemoryOrderStore {
    orders: Mutex<HashMap<String, LoadedOrder>>,
}

impl MemoryOrderStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every order with its pending outbox, in id order (for summaries and tests).
    pub fn snapshot(&self) -> Vec<LoadedOrder> {
        let orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<LoadedOrder> = orders.values().cloned().collect();
        all.sort_by(|a, b| a.record.order.order_id().cmp(b.record.order.order_id()));
        all
    }
}

#[async_trait]
impl OrderStore for MemoryOrderStore {
    async fn load(&self, order_id: &str) -> Result<Option<LoadedOrder>, StoreError> {
        let orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(orders.get(order_id).cloned())
    }

    async fn apply(&self, next: &OrderRecord, outbox: &[OutboxRow]) -> Result<(), StoreError> {
        let mut orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        let id = next.order.order_id();
        let expected = next.version.saturating_sub(1);
        let stored = orders.get(id).map_or(0, |o| o.record.version);
        if stored != expected || next.version == 0 {
            return Err(StoreError::Conflict {
                order_id: id.to_owned(),
                expected,
            });
        }
        let mut rows = orders.remove(id).map(|o| o.outbox).unwrap_or_default();
        rows.extend(outbox.iter().cloned());
        rows.sort_by(|a, b| a.id().cmp(b.id()));
        rows.dedup_by(|a, b| a.id() == b.id());
        let loaded = LoadedOrder {
            record: next.clone(),
            outbox: rows,
        };
        orders.insert(id.to_owned(), loaded);
        Ok(())
    }

    async fn clear_outbox(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let mut orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stored) = orders.get_mut(order.order_id()) {
            stored
                .outbox
                .retain(|row| !rows.iter().any(|r| r.id() == row.id()));
        }
        Ok(())
    }
}
