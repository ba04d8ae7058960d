//! Fleet's message-bus framework.
//!
//! - [`transport`]: the small traits every transport implements ([`Queue`], [`Sender`],
//!   [`Publisher`], [`Transport`]);
//! - [`embedded`]: an in-process transport with SQS and SNS semantics, for running and testing
//!   without AWS;
//! - [`topology`]: queues, topics and subscriptions declared once and provisioned anywhere;
//! - [`sns`]: filter policies and the SNS envelope;
//! - [`idempotency`]: the idempotency store trait, its in-memory store and the layer that runs a
//!   handler once per key;
//! - [`metrics`]: the catalogue of the bus's metrics (names, types, units, labels, meaning);
//! - [`log_limit`]: the rate limit of log lines about a failing dependency.
//! - [`trace`]: the W3C trace context every send carries and every handler runs in.

#[cfg(feature = "aws")]
pub mod aws;
mod batch_call;
pub mod consumer;
pub mod embedded;
mod error;
pub mod failpoint;
pub mod idempotency;
pub mod limits;
pub mod log_limit;
mod message;
pub mod metrics;
pub mod producer;
pub mod retry;
#[cfg(feature = "scenarios")]
pub mod scenarios;
pub mod sns;
pub mod topology;
pub mod trace;
pub mod transport;
pub mod validate;

pub use consumer::{Consumer, ConsumerConfig, Delivery, HandlerError, ShutdownReport, handler_fn};
pub use error::{BoxError, BusError, chain_text, is_throttling_code};
pub use message::{
    AttributeValue, EntryError, EntryResult, Message, MessageAttributes, OutgoingMessage, Receipt,
    ReceiveRequest, SendReceipt, SystemAttributes, VisibilityChange, payload_size,
};
pub use topology::{
    DeadLetterDecl, Declaration, ProvisionReport, QueueDecl, SubscriptionDecl, TableDecl,
    TopicDecl, Topology, provision,
};
pub use transport::{
    Applied, Publisher, Queue, QueueAdmin, QueueCounts, QueueDescription, QueueHandle,
    RedrivePolicy, Sender, Transport,
};
