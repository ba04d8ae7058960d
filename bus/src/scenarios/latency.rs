//! A transport whose queue calls each take a network round trip, for tests and benchmarks of
//! what latency changes: the embedded queue answers in microseconds, SQS in tens of
//! milliseconds, and adaptive polling only pays where a round trip is long.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::BusError;
use crate::message::{
    EntryResult, Message, OutgoingMessage, Receipt, ReceiveRequest, SendReceipt, VisibilityChange,
};
use crate::topology::Declaration;
use crate::transport::{
    Applied, Publisher, Queue, QueueAdmin, QueueDescription, QueueHandle, Sender, Transport,
};

/// Another transport whose queue calls (receive, delete, change visibility, send, describe) each
/// wait a round trip first, and which counts the receives. Declarations and topics pass through.
///
/// The whole round trip is spent before the call reaches the inner queue, so a receive keeps the
/// inner queue's cancel safety (an abandoned receive has taken nothing).
#[derive(Clone)]
pub struct LatencyTransport {
    inner: Arc<dyn Transport>,
    latency: Latency,
    receives: Arc<ReceiveCounts>,
}

/// How long each call waits.
#[derive(Clone, Copy, Debug)]
struct Latency {
    round_trip: Duration,
    jitter: Duration,
}

impl Latency {
    async fn wait(self) {
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(rand::random::<f64>())
        };
        tokio::time::sleep(self.round_trip + jitter).await;
    }
}

/// The receives made through a [`LatencyTransport`], on all its queues.
#[derive(Debug, Default)]
pub struct ReceiveCounts {
    calls: AtomicU64,
    messages: AtomicU64,
    on_wire: AtomicUsize,
    peak_on_wire: AtomicUsize,
    asked: Mutex<Vec<usize>>,
}

impl ReceiveCounts {
    /// Receives made (answered or not).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Messages the receives returned.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::SeqCst)
    }

    /// Receives on the wire now.
    pub fn on_wire(&self) -> usize {
        self.on_wire.load(Ordering::SeqCst)
    }

    /// The most receives that were on the wire at once.
    pub fn peak_on_wire(&self) -> usize {
        self.peak_on_wire.load(Ordering::SeqCst)
    }

    /// How many messages each receive asked for, in the order they were sent (one entry per
    /// receive, kept for the transport's life: for tests).
    pub fn asked(&self) -> Vec<usize> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Counts a receive on the wire until dropped (answered or abandoned).
struct OnWire<'a>(&'a ReceiveCounts);

impl<'a> OnWire<'a> {
    fn start(counts: &'a ReceiveCounts, asked: usize) -> Self {
        counts
            .asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(asked);
        counts.calls.fetch_add(1, Ordering::SeqCst);
        let now = counts.on_wire.fetch_add(1, Ordering::SeqCst) + 1;
        counts.peak_on_wire.fetch_max(now, Ordering::SeqCst);
        Self(counts)
    }
}

impl Drop for OnWire<'_> {
    fn drop(&mut self) {
        self.0.on_wire.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LatencyTransport {
    /// `inner`, with every queue call waiting `round_trip` first.
    pub fn new(inner: impl Transport + 'static, round_trip: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            latency: Latency {
                round_trip,
                jitter: Duration::ZERO,
            },
            receives: Arc::default(),
        }
    }

    /// Adds a uniformly random extra wait of up to `jitter` to each call.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.latency.jitter = jitter;
        self
    }

    /// The receives made so far, on every queue of this transport.
    pub fn receives(&self) -> Arc<ReceiveCounts> {
        self.receives.clone()
    }
}

#[async_trait]
impl Transport for LatencyTransport {
    async fn declare(&self, declaration: &Declaration<'_>) -> Result<Applied, BusError> {
        self.inner.declare(declaration).await
    }

    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        let inner = self.inner.queue(name).await?;
        let arn = inner.arn().to_owned();
        let queue = LatencyQueue {
            inner,
            latency: self.latency,
            receives: self.receives.clone(),
        };
        Ok(QueueHandle::new(name, &arn, Arc::new(queue)))
    }

    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        self.inner.topic(name).await
    }
}

struct LatencyQueue {
    inner: QueueHandle,
    latency: Latency,
    receives: Arc<ReceiveCounts>,
}

#[async_trait]
impl Queue for LatencyQueue {
    async fn receive(&self, request: &ReceiveRequest) -> Result<Vec<Message>, BusError> {
        let _on_wire = OnWire::start(&self.receives, request.max_messages);
        self.latency.wait().await;
        let messages = self.inner.queue().receive(request).await?;
        self.receives
            .messages
            .fetch_add(messages.len() as u64, Ordering::SeqCst);
        Ok(messages)
    }

    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError> {
        self.latency.wait().await;
        self.inner.queue().delete_batch(receipts).await
    }

    async fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError> {
        self.latency.wait().await;
        self.inner.queue().change_visibility_batch(changes).await
    }

    fn receive_is_cancel_safe(&self) -> bool {
        self.inner.queue().receive_is_cancel_safe()
    }
}

#[async_trait]
impl Sender for LatencyQueue {
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        self.latency.wait().await;
        self.inner.sender().send_batch(messages).await
    }
}

#[async_trait]
impl QueueAdmin for LatencyQueue {
    async fn describe(&self) -> Result<QueueDescription, BusError> {
        self.latency.wait().await;
        self.inner.admin().describe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedBus;
    use crate::scenarios::support::{declare_with_dlq, send_all};

    #[tokio::test(start_paused = true)]
    async fn each_call_waits_its_round_trip_and_receives_are_counted() {
        let bus = EmbeddedBus::new();
        declare_with_dlq(&bus, "slow", 3, Duration::from_secs(30)).await;
        send_all(&bus, "slow", vec![OutgoingMessage::new("a")]).await;
        let slow = LatencyTransport::new(bus, Duration::from_millis(20));
        let queue = slow.queue("slow").await.unwrap().queue();
        let start = tokio::time::Instant::now();
        let request = ReceiveRequest::new(10, Duration::from_secs(1));
        let got = queue.receive(&request).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(start.elapsed(), Duration::from_millis(20));
        let counts = slow.receives();
        assert_eq!((counts.calls(), counts.messages()), (1, 1));
        assert_eq!((counts.on_wire(), counts.peak_on_wire()), (0, 1));
        assert!(queue.receive_is_cancel_safe(), "as the embedded queue's");
    }
}
