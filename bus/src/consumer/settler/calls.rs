//! The settler's batched API calls: what a settlement does, pending entries and how they are cut
//! into batches, and the tasks that make one bounded call each and report back. The settler, not
//! these tasks, decides whether a failed entry is tried again (while its lease lasts).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::Event;
use crate::consumer::observe::{Observer, Operation};
use crate::error::BusError;
use crate::failpoint;
use crate::limits::{MAX_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES};
use crate::message::{EntryError, EntryResult, OutgoingMessage, Receipt, VisibilityChange};
use crate::transport::{Queue, Sender};

/// A call that has not answered after this long is abandoned (and its entries tried again if
/// their leases allow), so one hung connection cannot stall leases or shutdown.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a settlement does.
#[derive(Debug)]
pub(crate) enum Op {
    /// Delete the message: after success, or once it is in the dead-letter queue.
    Delete { dead_lettered: bool },
    /// Set its visibility (a retry after a backoff, or a release at once).
    Change {
        timeout: Duration,
        outcome: ChangeOutcome,
    },
    /// Send it (or first its note) to the dead-letter queue; then delete it.
    DeadLetter {
        out: Box<OutgoingMessage>,
        then: Option<Box<OutgoingMessage>>,
        /// The attempt that failed last (for the backoff if the send fails).
        attempt: u32,
        /// A refused send is tried again while the lease lasts, never handed back.
        last_receive: bool,
    },
}

impl Op {
    /// Whether the lease is extended while this settlement is under way: yes for deletes and
    /// dead-letter sends, no for a visibility change (it is the last word on the lease).
    pub fn keeps_lease(&self) -> bool {
        !matches!(self, Op::Change { .. })
    }
}

/// What a visibility change settles the message as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeOutcome {
    /// Retried after a backoff.
    Retried,
    /// Handed back unprocessed.
    Released,
    /// Its dead-letter send failed: it comes back after a backoff (counted as a failed
    /// settlement of the send).
    DeadLetterFailed,
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

    /// When the batch is due by the interval, if anything is waiting.
    pub fn due_at(&self, interval: Duration) -> Option<Instant> {
        self.since.map(|s| s + interval)
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
    key: impl Fn(&T) -> u64,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    // A batch holds at most 10 entries: looking a key up among them beats hashing it.
    let mut batches: Vec<(Vec<T>, usize)> = Vec::new();
    for item in items {
        let (k, s) = (key(&item), size(&item));
        let slot = batches.iter().position(|(b, bytes)| {
            b.len() < MAX_BATCH_ENTRIES
                && !b.iter().any(|other| key(other) == k)
                && bytes + s <= MAX_SQS_BATCH_BYTES
        });
        match slot {
            Some(i) => {
                let (b, bytes) = &mut batches[i];
                *bytes += s;
                b.push(item);
            }
            None => {
                let mut b = Vec::with_capacity(MAX_BATCH_ENTRIES);
                b.push(item);
                batches.push((b, s));
            }
        }
    }
    batches.into_iter().map(|(b, _)| b).collect()
}

/// One entry of a visibility change call: an extension of a lease, or a settlement.
#[derive(Clone, Debug)]
pub(crate) struct ChangeEntry {
    pub id: u64,
    pub receipt: Receipt,
    pub timeout: Duration,
    pub extension: bool,
    /// When the call was decided: a granted timeout counts from here, never later.
    pub issued: Instant,
}

/// A finished call: the lease ids it carried and one result per id, in order.
pub(crate) enum Completed {
    Deleted(Vec<u64>, Vec<EntryResult<()>>),
    Changed(Vec<ChangeEntry>, Vec<EntryResult<()>>),
    SentToDeadLetter(Vec<u64>, Vec<EntryResult<()>>),
}

/// Makes one call bounded by `limit`, logs its failures once (one line for the call, or one line
/// per error code among its entries) and returns one result per entry.
async fn bounded_call<Fut>(
    obs: &Observer,
    op: Operation,
    n: usize,
    limit: Duration,
    call: Fut,
) -> Vec<EntryResult<()>>
where
    Fut: Future<Output = Result<Vec<EntryResult<()>>, BusError>>,
{
    obs.api_call(op);
    let outcome = match tokio::time::timeout(limit, call).await {
        Ok(outcome) => outcome,
        Err(_) => Err(BusError::timeout(&obs.queue, op.name(), limit)),
    };
    let results = match outcome {
        Err(e) => {
            obs.api_error(op, n, &e);
            let entry = EntryError {
                code: e.code().unwrap_or("CallFailed").to_owned(),
                message: e.to_string(),
                sender_fault: !e.is_retryable(),
            };
            return vec![Err(entry); n];
        }
        Ok(rs) => rs,
    };
    let mut results: Vec<EntryResult<()>> = results.into_iter().take(n).collect();
    while results.len() < n {
        results.push(Err(EntryError::sender(
            "MissingEntryResult",
            "the service returned no result for this entry",
        )));
    }
    let mut by_code: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        by_code.entry(&e.code).or_insert((0, &e.message)).0 += 1;
    }
    for (code, (count, example)) in by_code {
        obs.entries_failed(op, code, count, n, example);
    }
    results
}

/// Deletes a batch and reports back.
pub(crate) fn spawn_deletes(
    queue: Arc<dyn Queue>,
    obs: Arc<Observer>,
    tx: UnboundedSender<Event>,
    batch: Vec<(u64, Receipt)>,
    limit: Duration,
) {
    tokio::spawn(async move {
        // Handled, not yet deleted: redelivery and the handlers' deduplication cover a crash here.
        failpoint::hit(failpoint::SETTLER_BEFORE_DELETE_FLUSH).await;
        let (ids, receipts): (Vec<u64>, Vec<Receipt>) = batch.into_iter().unzip();
        let n = ids.len();
        let results = bounded_call(&obs, Operation::Delete, n, limit, async {
            queue.delete_batch(&receipts).await
        })
        .await;
        let _ = tx.send(Event::Done(Completed::Deleted(ids, results)));
    });
}

/// Changes visibilities of a batch and reports back.
pub(crate) fn spawn_changes(
    queue: Arc<dyn Queue>,
    obs: Arc<Observer>,
    tx: UnboundedSender<Event>,
    batch: Vec<ChangeEntry>,
    limit: Duration,
) {
    tokio::spawn(async move {
        if batch.iter().any(|c| c.extension) {
            // A handler still running on a lease: a crash here leaves it to redelivery.
            failpoint::hit(failpoint::SETTLER_DURING_EXTENSION).await;
        }
        let changes: Vec<VisibilityChange> = batch
            .iter()
            .map(|c| VisibilityChange {
                receipt: c.receipt.clone(),
                timeout: c.timeout,
            })
            .collect();
        let n = changes.len();
        let results = bounded_call(&obs, Operation::ChangeVisibility, n, limit, async {
            queue.change_visibility_batch(&changes).await
        })
        .await;
        let _ = tx.send(Event::Done(Completed::Changed(batch, results)));
    });
}

/// Sends a batch to the dead-letter queue and reports back.
pub(crate) fn spawn_dead_letters(
    dlq: Arc<dyn Sender>,
    obs: Arc<Observer>,
    tx: UnboundedSender<Event>,
    batch: Vec<(u64, OutgoingMessage)>,
    limit: Duration,
) {
    tokio::spawn(async move {
        let (ids, messages): (Vec<u64>, Vec<OutgoingMessage>) = batch.into_iter().unzip();
        let n = ids.len();
        let results = bounded_call(&obs, Operation::SendDeadLetter, n, limit, async {
            dlq.send_batch(&messages)
                .await
                .map(|rs| rs.into_iter().map(|r| r.map(|_| ())).collect())
        })
        .await;
        let _ = tx.send(Event::Done(Completed::SentToDeadLetter(ids, results)));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn batches_hold_ten_distinct_messages_within_the_size_limit() {
        let items: Vec<(u64, usize)> = (0..25).map(|i| (i % 12, 10)).collect();
        let batches = distinct_batches(items, |x| x.0, |x| x.1);
        for b in &batches {
            assert!(b.len() <= MAX_BATCH_ENTRIES);
            let keys: HashSet<_> = b.iter().map(|x| x.0).collect();
            assert_eq!(keys.len(), b.len(), "a batch repeats a message");
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 25);
        let big: Vec<(u64, usize)> = (0..3).map(|i| (i, MAX_SQS_BATCH_BYTES / 2)).collect();
        assert_eq!(distinct_batches(big, |x| x.0, |x| x.1).len(), 2);
    }
}
