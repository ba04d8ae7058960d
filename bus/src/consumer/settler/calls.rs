//! The settler's batched API calls: pending entries, how they are cut into batches, and the
//! tasks that make the calls and report back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::Event;
use crate::batch_call::call_batch;
use crate::events::Scope;
use crate::limits::{MAX_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES};
use crate::message::{EntryResult, OutgoingMessage, Receipt, SendReceipt, VisibilityChange};
use crate::transport::{Queue, Sender};

/// A message to delete: after success, or after it reached the dead-letter queue.
#[derive(Clone)]
pub(crate) struct DeleteEntry {
    pub message_id: String,
    pub receipt: Receipt,
    pub dead_lettered: bool,
}

/// Why a visibility change is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Keep an in-flight message's lease.
    Extend,
    /// Make a failed message visible after its backoff.
    Retry,
    /// Hand an unprocessed message back at once.
    Release,
}

/// A visibility change of one message.
#[derive(Clone)]
pub(crate) struct Change {
    /// The lease id (0 when the lease is already gone).
    pub id: u64,
    pub message_id: String,
    pub receipt: Receipt,
    pub timeout: Duration,
    pub kind: ChangeKind,
    /// When the change was decided: the new deadline counts from here, never later.
    pub issued: Instant,
}

/// A message on its way to the dead-letter queue.
#[derive(Clone)]
pub(crate) struct DeadEntry {
    pub message_id: String,
    pub receipt: Receipt,
    /// What this call sends: the dead letter, or first the note that carries its reason.
    pub out: OutgoingMessage,
    /// The dead letter itself, sent once its note is in the dead-letter queue.
    pub then: Option<OutgoingMessage>,
    pub received_at: Instant,
    pub attempt: u32,
}

/// A finished call's per-entry results.
pub(crate) enum Completed {
    Deleted(Vec<(DeleteEntry, EntryResult<()>)>),
    Changed(Vec<(Change, EntryResult<()>)>),
    DeadLettered(Vec<(DeadEntry, EntryResult<SendReceipt>)>),
}

/// Entries waiting to fill a batch.
pub(crate) struct Pending<T> {
    pub items: Vec<T>,
    pub since: Option<Instant>,
}

impl<T> Pending<T> {
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            since: None,
        }
    }

    pub fn push(&mut self, item: T, now: Instant) {
        self.since.get_or_insert(now);
        self.items.push(item);
    }

    /// Whether to send now: a full batch, the interval passed, or `now_anyway`.
    pub fn due(&self, interval: Duration, now: Instant, now_anyway: bool) -> bool {
        !self.items.is_empty()
            && (now_anyway
                || self.items.len() >= MAX_BATCH_ENTRIES
                || self.since.is_some_and(|s| s + interval <= now))
    }

    pub fn take(&mut self) -> Vec<T> {
        self.since = None;
        std::mem::take(&mut self.items)
    }
}

/// Splits entries into batches of at most 10 and at most the SQS batch size, never putting two
/// entries for the same message in one batch (SQS would refuse or apply only one).
pub(crate) fn distinct_batches<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut batches: Vec<(Vec<T>, HashSet<String>, usize)> = Vec::new();
    for item in items {
        let (k, s) = (key(&item), size(&item));
        let slot = batches.iter().position(|(b, keys, bytes)| {
            b.len() < MAX_BATCH_ENTRIES && !keys.contains(&k) && bytes + s <= MAX_SQS_BATCH_BYTES
        });
        match slot {
            Some(i) => {
                let (b, keys, bytes) = &mut batches[i];
                keys.insert(k);
                *bytes += s;
                b.push(item);
            }
            None => batches.push((vec![item], HashSet::from([k]), s)),
        }
    }
    batches.into_iter().map(|(b, _, _)| b).collect()
}

/// Deletes a batch and reports back.
pub(crate) fn spawn_deletes(
    queue: Arc<dyn Queue>,
    scope: Scope,
    tx: UnboundedSender<Event>,
    batch: Vec<DeleteEntry>,
) {
    tokio::spawn(async move {
        let receipts: Vec<Receipt> = batch.iter().map(|e| e.receipt.clone()).collect();
        let results = call_batch(&scope, "DeleteMessageBatch", receipts, |r| {
            let queue = queue.clone();
            async move { queue.delete_batch(&r).await }
        })
        .await;
        let _ = tx.send(Event::Done(Completed::Deleted(
            batch.into_iter().zip(results).collect(),
        )));
    });
}

/// Changes visibilities of a batch and reports back.
pub(crate) fn spawn_changes(
    queue: Arc<dyn Queue>,
    scope: Scope,
    tx: UnboundedSender<Event>,
    batch: Vec<Change>,
) {
    tokio::spawn(async move {
        let changes: Vec<VisibilityChange> = batch
            .iter()
            .map(|c| VisibilityChange {
                receipt: c.receipt.clone(),
                timeout: c.timeout,
            })
            .collect();
        let results = call_batch(&scope, "ChangeMessageVisibilityBatch", changes, |c| {
            let queue = queue.clone();
            async move { queue.change_visibility_batch(&c).await }
        })
        .await;
        let _ = tx.send(Event::Done(Completed::Changed(
            batch.into_iter().zip(results).collect(),
        )));
    });
}

/// Sends a batch to the dead-letter queue and reports back.
pub(crate) fn spawn_dead_letters(
    dlq: Arc<dyn Sender>,
    scope: Scope,
    tx: UnboundedSender<Event>,
    batch: Vec<DeadEntry>,
) {
    tokio::spawn(async move {
        let messages: Vec<OutgoingMessage> = batch.iter().map(|d| d.out.clone()).collect();
        let results = call_batch(&scope, "SendMessageBatch", messages, |m| {
            let dlq = dlq.clone();
            async move { dlq.send_batch(&m).await }
        })
        .await;
        let _ = tx.send(Event::Done(Completed::DeadLettered(
            batch.into_iter().zip(results).collect(),
        )));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_ten_distinct_messages_within_the_size_limit() {
        let items: Vec<(String, usize)> = (0..25).map(|i| (format!("m{}", i % 12), 10)).collect();
        let batches = distinct_batches(items, |x| x.0.clone(), |x| x.1);
        for b in &batches {
            assert!(b.len() <= MAX_BATCH_ENTRIES);
            let keys: HashSet<_> = b.iter().map(|x| &x.0).collect();
            assert_eq!(keys.len(), b.len(), "a batch repeats a message");
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 25);
        let big: Vec<(String, usize)> = (0..3)
            .map(|i| (format!("b{i}"), MAX_SQS_BATCH_BYTES / 2))
            .collect();
        assert_eq!(distinct_batches(big, |x| x.0.clone(), |x| x.1).len(), 2);
    }
}
