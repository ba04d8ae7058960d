//! The small traits every transport implements: a queue to receive from and settle into, a sender,
//! a topic to publish to, and the transport that declares and opens them by name.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::BusError;
use crate::message::{
    EntryResult, Message, OutgoingMessage, Receipt, ReceiveRequest, SendReceipt, VisibilityChange,
};
use crate::topology::Declaration;

/// The consuming side of a queue: receive messages and settle them.
///
/// Batch methods return one result per entry, in the order given; an `Err` of the whole call means
/// no entry was applied.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Receives up to `request.max_messages`, long-polling up to `request.wait_time`.
    ///
    /// # Errors
    /// When the call fails as a whole (invalid parameters, queue gone, network).
    async fn receive(&self, request: &ReceiveRequest) -> Result<Vec<Message>, BusError>;

    /// Deletes received messages (at most 10 per call).
    ///
    /// # Errors
    /// When the call fails as a whole (empty or oversized batch, queue gone, network).
    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError>;

    /// Changes the visibility timeout of received messages (at most 10 per call).
    ///
    /// # Errors
    /// When the call fails as a whole (empty or oversized batch, queue gone, network).
    async fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError>;

    /// Whether dropping a `receive` future before it completes is guaranteed to take no message.
    /// The embedded transport is; a network transport is not (the server may already have handed
    /// messages to a request that is abandoned), so the consumer lets such a receive finish.
    fn receive_is_cancel_safe(&self) -> bool {
        false
    }
}

/// The producing side of a queue.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Sends up to 10 messages, within the batch size limit.
    ///
    /// # Errors
    /// When the call fails as a whole (too many entries, batch too large, queue gone, network).
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError>;

    /// Sends one message.
    ///
    /// The default cannot name the queue in the entry's error; the senders of a
    /// [`QueueHandle`] and the transports' own types do (through [`single_entry`]).
    ///
    /// # Errors
    /// As `send_batch`, plus the entry's own failure.
    async fn send(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut results = self.send_batch(std::slice::from_ref(&message)).await?;
        single_entry("", "SendMessage", results.pop())
    }
}

/// A topic that fans messages out to its subscriptions.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes up to 10 messages, within the batch size limit.
    ///
    /// # Errors
    /// When the call fails as a whole (too many entries, batch too large, topic gone, network).
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError>;

    /// Publishes one message.
    ///
    /// The default cannot name the topic in the entry's error; the transports' own types do
    /// (through [`single_entry`]).
    ///
    /// # Errors
    /// As `publish_batch`, plus the entry's own failure.
    async fn publish(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut results = self.publish_batch(std::slice::from_ref(&message)).await?;
        single_entry("", "Publish", results.pop())
    }
}

/// The outcome of a one-message send or publish (`operation`) to `resource`, from the one result
/// of its batch call: for implementations of [`Sender::send`] and [`Publisher::publish`] that
/// know their queue's or topic's name.
///
/// # Errors
/// The entry's failure, or a missing result, as a `BusError::Api` on `resource`.
pub fn single_entry(
    resource: &str,
    operation: &'static str,
    result: Option<EntryResult<SendReceipt>>,
) -> Result<SendReceipt, BusError> {
    match result {
        Some(Ok(receipt)) => Ok(receipt),
        Some(Err(e)) => Err(BusError::Api {
            resource: resource.to_owned(),
            operation,
            code: e.code,
            message: e.message,
            retryable: !e.sender_fault,
            source: None,
        }),
        None => Err(BusError::Api {
            resource: resource.to_owned(),
            operation,
            code: "EmptyResult".to_owned(),
            message: "the batch call returned no entry".to_owned(),
            retryable: true,
            source: None,
        }),
    }
}

/// Reading a queue's configuration and depth.
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    /// The queue's configuration and approximate counts (one `GetQueueAttributes`).
    ///
    /// # Errors
    /// When the queue is gone or the call fails.
    async fn describe(&self) -> Result<QueueDescription, BusError>;
}

/// A queue's redrive policy: where messages go after `max_receive_count` receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// ARN of the dead-letter queue.
    pub dead_letter_target_arn: String,
    /// Receives after which the queue moves the message to the dead-letter queue.
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    /// The dead-letter queue's name, the last segment of its ARN.
    pub fn dead_letter_queue_name(&self) -> &str {
        arn_resource_name(&self.dead_letter_target_arn)
    }
}

/// The resource name at the end of an SQS or SNS ARN.
pub fn arn_resource_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Approximate message counts, as `GetQueueAttributes` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// `ApproximateNumberOfMessages`: ready to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received and not yet settled.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
}

/// A queue's configuration and counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDescription {
    /// The queue name.
    pub name: String,
    /// The queue ARN.
    pub arn: String,
    /// Whether it is a FIFO queue.
    pub fifo: bool,
    /// Default visibility timeout.
    pub visibility_timeout: Duration,
    /// Default delivery delay.
    pub delay: Duration,
    /// Retention period.
    pub retention: Duration,
    /// The redrive policy, if any.
    pub redrive: Option<RedrivePolicy>,
    /// Approximate counts.
    pub counts: QueueCounts,
}

/// Everything a transport's queue can do; implemented for every type that is all three.
pub trait QueueApi: Queue + Sender + QueueAdmin {}
impl<T: Queue + Sender + QueueAdmin> QueueApi for T {}

/// An opened queue: its name and ARN, and the operations on it.
#[derive(Clone)]
pub struct QueueHandle {
    name: Arc<str>,
    arn: Arc<str>,
    api: Arc<dyn QueueApi>,
}

impl std::fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl QueueHandle {
    /// Wraps a transport's queue.
    pub fn new(name: &str, arn: &str, api: Arc<dyn QueueApi>) -> Self {
        Self {
            name: name.into(),
            arn: arn.into(),
            api,
        }
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The consuming side.
    pub fn queue(&self) -> Arc<dyn Queue> {
        self.api.clone()
    }

    /// The producing side; its errors name the queue.
    pub fn sender(&self) -> Arc<dyn Sender> {
        Arc::new(NamedSender {
            name: self.name.clone(),
            inner: self.api.clone(),
        })
    }

    /// Configuration and counts.
    pub fn admin(&self) -> Arc<dyn QueueAdmin> {
        self.api.clone()
    }
}

/// A queue's sender that knows the queue's name, so a refused [`Sender::send`] says which queue
/// refused it whatever the transport.
struct NamedSender {
    name: Arc<str>,
    inner: Arc<dyn QueueApi>,
}

#[async_trait]
impl Sender for NamedSender {
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        self.inner.send_batch(messages).await
    }

    async fn send(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut results = self.send_batch(std::slice::from_ref(&message)).await?;
        single_entry(&self.name, "SendMessage", results.pop())
    }
}

/// What applying one declaration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The resource did not exist and was created.
    Created,
    /// The resource existed; these settings were changed.
    Updated(Vec<String>),
    /// The resource existed exactly as declared.
    Unchanged,
}

/// A message bus: declares queues, topics and subscriptions, and opens them by name.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Creates or updates one declared resource so it matches the declaration. Idempotent.
    ///
    /// # Errors
    /// When the declaration is invalid or a call fails.
    async fn declare(&self, declaration: &Declaration<'_>) -> Result<Applied, BusError>;

    /// Opens an existing queue.
    ///
    /// # Errors
    /// `NotFound` when the queue does not exist.
    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError>;

    /// Opens an existing topic.
    ///
    /// # Errors
    /// `NotFound` when the topic does not exist.
    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError>;
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    async fn declare(&self, declaration: &Declaration<'_>) -> Result<Applied, BusError> {
        (**self).declare(declaration).await
    }

    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        (**self).queue(name).await
    }

    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        (**self).topic(name).await
    }
}
