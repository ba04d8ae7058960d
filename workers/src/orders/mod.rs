//! The orders worker: consumes `order.placed|paid|shipped|cancelled|refunded`, keeps each order
//! in an [`OrderStore`] with a version, and publishes the events an applied order event causes
//! (an order confirmation email, analytics) through a transactional outbox.
//!
//! - `machine.rs`: the pure state machine (which event applies to which order, and what it
//!   causes);
//! - `outgoing.rs`: the caused events, with ids derived from the cause's;
//! - `store.rs`: the [`OrderStore`] trait and [`MemoryOrderStore`]; `dynamo.rs`:
//!   [`DynamoOrderStore`] on the single table;
//! - `handler.rs`: [`OrdersWorker`], the thin handler;
//! - `read.rs`: what `fleet orders show` and `fleet orders list` print.

mod dynamo;
mod error;
mod handler;
pub mod item;
mod machine;
mod order;
pub(crate) mod outgoing;
pub mod read;
mod store;

pub use dynamo::DynamoOrderStore;
pub use error::OrderError;
pub use handler::{Handled, MAX_ROUNDS, OrdersWorker};
pub use machine::{Decision, OrderEvent, decide};
pub use order::{Cancellation, EventKind, Order, OrderStatus, Payment, Shipment};
pub use outgoing::{
    CONFIRMATION_TEMPLATE, EMAIL_SENT_SUFFIX, PRODUCER, confirmation_id, derived_envelope,
    derived_id,
};
pub use store::{
    BoxError, LoadedOrder, MemoryOrderStore, OrderRecord, OrderStore, OutboxRow, StoreError,
};
