//! `fleet dlq inspect` on a queue that answers like SQS: a short poll samples a subset of the
//! servers, so it may come back empty (or with a few messages) while many are there, and even a
//! long poll returns as soon as it has some. A local wrapper around the embedded transport
//! answers that way; the dead letters are all there and must all be listed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{
    Applied, BusError, Declaration, EntryResult, Message, OutgoingMessage, Publisher, Queue,
    QueueAdmin, QueueDecl, QueueDescription, QueueHandle, Receipt, ReceiveRequest, SendReceipt,
    Sender, Transport, VisibilityChange,
};

/// The embedded bus, with receives that sample: a short poll answers empty every other call
/// and with at most 2 messages otherwise; a long poll with at most 3.
struct Sampling {
    inner: EmbeddedBus,
    calls: Arc<AtomicUsize>,
}

struct SamplingQueue {
    inner: QueueHandle,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Queue for SamplingQueue {
    async fn receive(&self, r: &ReceiveRequest) -> Result<Vec<Message>, BusError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let short = r.wait_time.is_zero();
        if short && call.is_multiple_of(2) {
            return Ok(Vec::new());
        }
        let mut sampled = r.clone();
        sampled.max_messages = r.max_messages.min(if short { 2 } else { 3 });
        self.inner.queue().receive(&sampled).await
    }
    async fn delete_batch(&self, r: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError> {
        self.inner.queue().delete_batch(r).await
    }
    async fn change_visibility_batch(
        &self,
        c: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError> {
        self.inner.queue().change_visibility_batch(c).await
    }
}

#[async_trait]
impl Sender for SamplingQueue {
    async fn send_batch(
        &self,
        m: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        self.inner.sender().send_batch(m).await
    }
}

#[async_trait]
impl QueueAdmin for SamplingQueue {
    async fn describe(&self) -> Result<QueueDescription, BusError> {
        self.inner.admin().describe().await
    }
}

#[async_trait]
impl Transport for Sampling {
    async fn declare(&self, d: &Declaration<'_>) -> Result<Applied, BusError> {
        self.inner.declare(d).await
    }
    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        let inner = self.inner.queue(name).await?;
        let wrapped = SamplingQueue {
            inner: inner.clone(),
            calls: self.calls.clone(),
        };
        Ok(QueueHandle::new(name, inner.arn(), Arc::new(wrapped)))
    }
    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        self.inner.topic(name).await
    }
}

#[tokio::test(start_paused = true)]
async fn inspect_lists_every_dead_letter_when_polls_return_a_sample() {
    let bus = EmbeddedBus::new();
    bus.declare(&Declaration::Queue(&QueueDecl::new("dlq")))
        .await
        .unwrap();
    let q = bus.queue("dlq").await.unwrap();
    for chunk in (0..25).collect::<Vec<_>>().chunks(10) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| OutgoingMessage::new(format!("{{\"n\":{i}}}")))
            .collect();
        q.sender().send_batch(&batch).await.unwrap();
    }
    let sampling = Sampling {
        inner: bus.clone(),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let letters = fleet_workers::dlq::inspect(&sampling, "dlq", 100, Duration::from_secs(30))
        .await
        .unwrap();
    let mut bodies: Vec<String> = letters.iter().map(|d| d.message.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 25, "every dead letter listed once");
    let counts = q.admin().describe().await.unwrap().counts;
    assert_eq!(
        (counts.visible, counts.in_flight),
        (25, 0),
        "all left in place and visible again"
    );
}
