//! Sending many messages well: oversize messages are refused before any call, the rest go in
//! batches of up to 10 within the batch size limit, several batches at a time, and entries that
//! fail on the service side are tried again.
//!
//! To a FIFO destination (a name ending in `.fifo`, or messages with a group id) each group keeps
//! its order: one message of a group per call, one call per group in flight, and a failed entry
//! holds back the rest of its group (`producer/fifo.rs` says why).

mod fifo;

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use crate::batch_call::Scope;
use crate::batch_call::call_batch;
use crate::error::BusError;
use crate::limits::{
    MAX_BATCH_ENTRIES, MAX_SNS_BATCH_BYTES, MAX_SNS_MESSAGE_BYTES, MAX_SQS_BATCH_BYTES,
    MAX_SQS_MESSAGE_BYTES,
};
use crate::message::{EntryError, OutgoingMessage, SendReceipt};
use crate::transport::{Publisher, Sender};

/// Where a producer sends.
#[derive(Clone)]
pub enum Destination {
    /// A queue (`SendMessageBatch`).
    Queue(Arc<dyn Sender>),
    /// A topic (`PublishBatch`).
    Topic(Arc<dyn Publisher>),
}

/// The error code of a message refused before sending because it is too large.
pub const TOO_LARGE: &str = "MessageTooLong";

/// The error code of a FIFO message not sent because an earlier message of its group failed.
pub const HELD_BACK: &str = "HeldBack";

/// Sends messages to one queue or topic in full batches, with retries.
#[derive(Clone)]
pub struct BatchProducer {
    name: String,
    destination: Destination,
    max_message_bytes: usize,
    concurrency: usize,
}

/// What happened to each message of a [`BatchProducer::send_all`], by its index in the input.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Messages accepted, with what the service answered.
    pub sent: Vec<(usize, SendReceipt)>,
    /// Messages refused, and why.
    pub failed: Vec<(usize, EntryError)>,
}

impl BatchProducer {
    /// A producer for a queue: messages up to the SQS limit.
    pub fn to_queue(name: impl Into<String>, sender: Arc<dyn Sender>) -> Self {
        Self {
            name: name.into(),
            destination: Destination::Queue(sender),
            max_message_bytes: MAX_SQS_MESSAGE_BYTES,
            concurrency: 4,
        }
    }

    /// A producer for a topic: messages up to the SNS limit.
    pub fn to_topic(name: impl Into<String>, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            name: name.into(),
            destination: Destination::Topic(publisher),
            max_message_bytes: MAX_SNS_MESSAGE_BYTES,
            concurrency: 4,
        }
    }

    /// Lowers the message size limit (for example to the SNS limit for messages that may later
    /// be published).
    #[must_use]
    pub fn max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit.min(self.max_message_bytes);
        self
    }

    /// Batch calls in flight at once (default 4).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The largest message this producer sends.
    pub fn message_limit(&self) -> usize {
        self.max_message_bytes
    }

    fn batch_limit(&self) -> usize {
        match self.destination {
            Destination::Queue(_) => MAX_SQS_BATCH_BYTES,
            Destination::Topic(_) => MAX_SNS_BATCH_BYTES,
        }
    }

    /// Why a message would be refused before sending, if it would.
    pub fn check(&self, message: &OutgoingMessage) -> Option<EntryError> {
        let size = message.size();
        (size > self.max_message_bytes).then(|| {
            EntryError::sender(
                TOO_LARGE,
                format!(
                    "the message is {size} bytes; the limit is {} bytes",
                    self.max_message_bytes
                ),
            )
        })
    }

    /// Sends one message.
    ///
    /// # Errors
    /// The message's refusal, as a `BusError::Api` with the entry's code.
    pub async fn send(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut report = self.send_all(vec![message], |_| {}).await;
        match (report.sent.pop(), report.failed.pop()) {
            (Some((_, receipt)), _) => Ok(receipt),
            (None, Some((_, e))) => Err(BusError::Api {
                resource: self.name.clone(),
                operation: self.operation(),
                code: e.code,
                message: e.message,
                retryable: !e.sender_fault,
                source: None,
            }),
            (None, None) => Err(BusError::Internal(
                "the producer reported no outcome for the message".to_owned(),
            )),
        }
    }

    fn operation(&self) -> &'static str {
        match self.destination {
            Destination::Queue(_) => "SendMessageBatch",
            Destination::Topic(_) => "PublishBatch",
        }
    }

    /// Whether these messages go to a FIFO destination, where groups must keep their order.
    fn is_fifo(&self, messages: &[(usize, OutgoingMessage)]) -> bool {
        crate::topology::is_fifo_name(&self.name)
            || messages.iter().any(|(_, m)| m.group_id.is_some())
    }

    /// Sends every message; `progress` is told how many were settled after each batch.
    ///
    /// On a standard destination up to `concurrency` batches are in flight and failed entries
    /// are tried again after the rest. On a FIFO destination each group arrives in input order:
    /// a group's messages go one per call, and when one fails for good the later messages of its
    /// group are not sent and are reported with the code [`HELD_BACK`].
    pub async fn send_all(
        &self,
        messages: Vec<OutgoingMessage>,
        mut progress: impl FnMut(usize),
    ) -> SendReport {
        let mut report = SendReport::default();
        let mut ready = Vec::new();
        // The first message of each group refused here: the rest of its group must wait for it.
        let mut refused_groups: HashMap<String, usize> = HashMap::new();
        for (i, m) in messages.into_iter().enumerate() {
            match self.check(&m) {
                Some(e) => {
                    if let Some(g) = m.group_id {
                        refused_groups.entry(g).or_insert(i);
                    }
                    report.failed.push((i, e));
                }
                None => ready.push((i, m)),
            }
        }
        if !report.failed.is_empty() {
            progress(report.failed.len());
        }
        if !refused_groups.is_empty() || self.is_fifo(&ready) {
            let ready = fifo::hold_back(ready, &refused_groups, &mut report, &mut progress);
            fifo::send_in_group_order(self, ready, &mut report, &mut progress).await;
        } else {
            self.send_unordered(ready, &mut report, &mut progress).await;
        }
        report.sent.sort_by_key(|(i, _)| *i);
        report.failed.sort_by_key(|(i, _)| *i);
        report
    }

    /// Full batches, `concurrency` at a time, in whatever order they complete.
    async fn send_unordered(
        &self,
        ready: Vec<(usize, OutgoingMessage)>,
        report: &mut SendReport,
        progress: &mut impl FnMut(usize),
    ) {
        let batches = pack(ready, self.batch_limit());
        let mut calls = futures::stream::iter(batches)
            .map(|batch| self.send_batch(batch))
            .buffer_unordered(self.concurrency);
        while let Some(results) = calls.next().await {
            let n = results.len();
            for (i, r) in results {
                match r {
                    Ok(receipt) => report.sent.push((i, receipt)),
                    Err(e) => report.failed.push((i, e)),
                }
            }
            progress(n);
        }
    }

    async fn send_batch(
        &self,
        batch: Vec<(usize, OutgoingMessage)>,
    ) -> Vec<(usize, Result<SendReceipt, EntryError>)> {
        let scope = Scope {
            queue: self.name.clone(),
        };
        let (indexes, messages): (Vec<usize>, Vec<OutgoingMessage>) = batch.into_iter().unzip();
        let results = match &self.destination {
            Destination::Queue(q) => {
                call_batch(&scope, "SendMessageBatch", messages, |m| {
                    let q = q.clone();
                    async move { q.send_batch(&m).await }
                })
                .await
            }
            Destination::Topic(t) => {
                call_batch(&scope, "PublishBatch", messages, |m| {
                    let t = t.clone();
                    async move { t.publish_batch(&m).await }
                })
                .await
            }
        };
        indexes.into_iter().zip(results).collect()
    }
}

/// Packs messages into batches of at most 10 whose summed size stays within `max_bytes`.
fn pack(
    messages: Vec<(usize, OutgoingMessage)>,
    max_bytes: usize,
) -> Vec<Vec<(usize, OutgoingMessage)>> {
    let mut batches: Vec<Vec<(usize, OutgoingMessage)>> = Vec::new();
    let mut current: Vec<(usize, OutgoingMessage)> = Vec::new();
    let mut bytes = 0;
    for (i, m) in messages {
        let size = m.size();
        if !current.is_empty() && (current.len() == MAX_BATCH_ENTRIES || bytes + size > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push((i, m));
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedBus;
    use crate::topology::{QueueDecl, Topology};
    use crate::transport::Transport;

    #[test]
    fn packs_ten_per_batch_within_the_size_limit() {
        let small: Vec<_> = (0..25).map(|i| (i, OutgoingMessage::new("x"))).collect();
        assert_eq!(
            pack(small, 1000).iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let big: Vec<_> = (0..5)
            .map(|i| (i, OutgoingMessage::new("y".repeat(400))))
            .collect();
        assert_eq!(
            pack(big, 1000).iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_oversize_before_sending_and_sends_the_rest() {
        let bus = EmbeddedBus::new();
        bus.provision(&Topology {
            queues: vec![QueueDecl::new("out")],
            topics: vec![],
            ..Default::default()
        })
        .await
        .unwrap();
        let q = bus.queue("out").await.unwrap();
        let producer = BatchProducer::to_queue("out", q.sender()).max_message_bytes(1000);
        let mut messages: Vec<_> = (0..23)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect();
        messages[7] = OutgoingMessage::new("z".repeat(1001));
        messages[9] = OutgoingMessage::new("bad delay").delay(std::time::Duration::from_secs(901));
        let mut settled = 0;
        let report = producer.send_all(messages, |n| settled += n).await;
        assert_eq!(settled, 23);
        assert_eq!(report.sent.len(), 21);
        let failed: Vec<(usize, &str)> = report
            .failed
            .iter()
            .map(|(i, e)| (*i, e.code.as_str()))
            .collect();
        assert_eq!(failed, [(7, TOO_LARGE), (9, "InvalidParameterValue")]);
        assert_eq!(
            bus.embedded_queue("out").unwrap().api_calls().send,
            3,
            "23 messages, 3 batch calls, the oversize one never sent"
        );
        assert!(
            producer
                .send(OutgoingMessage::new("q".repeat(2000)))
                .await
                .unwrap_err()
                .to_string()
                .contains("the limit is 1000 bytes")
        );
    }
}
