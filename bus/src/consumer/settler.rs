//! The settler: one task that owns every in-flight message's lease and settles each message
//! exactly once. Because leases and settlements live in one task, an extension is never sent
//! after (or raced against) the delete of the same message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dead_letter::{DeadLetterReason, dead_letter_message};
use super::report::ShutdownReport;
use crate::batch_call::call_batch;
use crate::events::Scope;
use crate::limits::{MAX_BATCH_ENTRIES, MAX_SQS_BATCH_BYTES, MAX_VISIBILITY_TIMEOUT};
use crate::message::{
    EntryResult, Message, OutgoingMessage, Receipt, SendReceipt, VisibilityChange,
};
use crate::retry::RetryPolicy;
use crate::transport::{Queue, Sender};

/// Why a handler failed, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Handler,
    Panic,
    Timeout,
}

/// How the engine decided to settle one message.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Delete it.
    Ack,
    /// Make it visible again after `delay`.
    Retry {
        delay: Duration,
        attempt: u32,
        reason: String,
        cause: Cause,
    },
    /// Send it to the dead-letter queue with the reason, then delete it.
    DeadLetter {
        message: Box<Message>,
        reason: DeadLetterReason,
        cause: Cause,
    },
    /// Hand it back unprocessed (visibility 0).
    Release(&'static str),
}

/// A received message as the settler tracks it.
pub(crate) struct Tracked {
    pub id: u64,
    pub message_id: String,
    pub receipt: Receipt,
    pub visibility: Duration,
    pub cancel: CancellationToken,
}

pub(crate) enum Event {
    Received(Vec<Tracked>),
    Decided {
        id: u64,
        verdict: Verdict,
    },
    Done(Completed),
    /// Every handler has finished: flush everything and stop.
    Drain,
}

pub(crate) enum Completed {
    Deleted(Vec<(DeleteEntry, EntryResult<()>)>),
    Changed(Vec<(Change, EntryResult<()>)>),
    DeadLettered(Vec<(DeadEntry, EntryResult<SendReceipt>)>),
}

struct Lease {
    message_id: String,
    receipt: Receipt,
    received_at: Instant,
    deadline: Instant,
    visibility: Duration,
    extending: bool,
    lost: bool,
    deferred: Option<Verdict>,
    cancel: CancellationToken,
}

#[derive(Clone)]
pub(crate) struct DeleteEntry {
    message_id: String,
    receipt: Receipt,
    dead_lettered: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Extend,
    Retry,
    Release,
}

#[derive(Clone)]
pub(crate) struct Change {
    id: u64,
    message_id: String,
    receipt: Receipt,
    timeout: Duration,
    kind: ChangeKind,
}

#[derive(Clone)]
pub(crate) struct DeadEntry {
    message_id: String,
    receipt: Receipt,
    out: OutgoingMessage,
    received_at: Instant,
    attempt: u32,
}

struct Pending<T> {
    items: Vec<T>,
    since: Option<Instant>,
}

impl<T> Pending<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            since: None,
        }
    }

    fn push(&mut self, item: T, now: Instant) {
        self.since.get_or_insert(now);
        self.items.push(item);
    }

    fn due(&self, interval: Duration, now: Instant, draining: bool) -> bool {
        !self.items.is_empty()
            && (draining
                || self.items.len() >= MAX_BATCH_ENTRIES
                || self.since.is_some_and(|s| s + interval <= now))
    }

    fn take(&mut self) -> Vec<T> {
        self.since = None;
        std::mem::take(&mut self.items)
    }
}

/// What the settler needs to know about its queue.
pub(crate) struct SettlerSetup {
    pub queue: Arc<dyn Queue>,
    pub dead_letter: Arc<dyn Sender>,
    pub dead_letter_fifo: bool,
    pub scope: Scope,
    pub flush_interval: Duration,
    pub retry: RetryPolicy,
}

pub(crate) struct Settler {
    setup: SettlerSetup,
    leases: HashMap<u64, Lease>,
    deletes: Pending<DeleteEntry>,
    changes: Pending<Change>,
    dead: Pending<DeadEntry>,
    outstanding: usize,
    draining: bool,
    report: ShutdownReport,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
}

impl Settler {
    pub fn new(
        setup: SettlerSetup,
        tx: UnboundedSender<Event>,
        rx: UnboundedReceiver<Event>,
    ) -> Self {
        Self {
            setup,
            leases: HashMap::new(),
            deletes: Pending::new(),
            changes: Pending::new(),
            dead: Pending::new(),
            outstanding: 0,
            draining: false,
            report: ShutdownReport::default(),
            tx,
            rx,
        }
    }

    /// Runs until drained; returns how every message was settled.
    pub async fn run(mut self) -> ShutdownReport {
        loop {
            let wake = self.next_wake();
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {}
            }
            // Take whatever else is already queued before deciding, so batches fill.
            while let Ok(ev) = self.rx.try_recv() {
                self.on_event(ev);
            }
            self.on_tick(Instant::now());
            if self.draining && self.is_idle() {
                break;
            }
        }
        self.report
    }

    fn is_idle(&self) -> bool {
        self.outstanding == 0
            && self.leases.is_empty()
            && self.deletes.items.is_empty()
            && self.changes.items.is_empty()
            && self.dead.items.is_empty()
    }

    fn next_wake(&self) -> Instant {
        let interval = self.setup.flush_interval;
        let flushes = [self.deletes.since, self.changes.since, self.dead.since]
            .into_iter()
            .flatten()
            .map(|s| s + interval);
        let leases = self
            .leases
            .values()
            .filter(|l| !l.extending && !l.lost)
            .map(|l| l.deadline - l.visibility / 2);
        flushes
            .chain(leases)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Received(tracked) => {
                self.report.received += tracked.len() as u64;
                self.setup.scope.received(tracked.len());
                for t in tracked {
                    let lease = Lease {
                        message_id: t.message_id,
                        receipt: t.receipt,
                        received_at: now,
                        deadline: now + t.visibility,
                        visibility: t.visibility,
                        extending: false,
                        lost: false,
                        deferred: None,
                        cancel: t.cancel,
                    };
                    self.leases.insert(t.id, lease);
                }
            }
            Event::Decided { id, verdict } => self.on_decided(id, verdict, now),
            Event::Done(done) => {
                self.outstanding -= 1;
                self.on_completed(done, now);
            }
            Event::Drain => self.draining = true,
        }
        self.setup.scope.in_flight(self.leases.len());
    }

    fn on_decided(&mut self, id: u64, verdict: Verdict, now: Instant) {
        let Some(lease) = self.leases.get_mut(&id) else {
            tracing::error!(
                id,
                "a message was decided twice; the second verdict is ignored"
            );
            return;
        };
        if lease.extending {
            // The extension in flight must land before the message is settled.
            lease.deferred = Some(verdict);
            return;
        }
        let lease = self.leases.remove(&id).expect("present: looked up above");
        if lease.lost {
            self.report.lease_lost += 1;
            return;
        }
        self.apply(id, lease, verdict, now);
    }

    /// Queues the settlement of a decided message whose lease has just ended.
    fn apply(&mut self, id: u64, lease: Lease, verdict: Verdict, now: Instant) {
        let Lease {
            message_id,
            receipt,
            received_at,
            ..
        } = lease;
        let change = |timeout, kind| Change {
            id,
            message_id: message_id.clone(),
            receipt: receipt.clone(),
            timeout,
            kind,
        };
        match verdict {
            Verdict::Ack => self.deletes.push(
                DeleteEntry {
                    message_id,
                    receipt,
                    dead_lettered: false,
                },
                now,
            ),
            Verdict::Retry {
                delay,
                attempt,
                reason,
                cause,
            } => {
                self.count_cause(cause);
                let delay = delay.min(visibility_budget(received_at, now));
                self.setup
                    .scope
                    .retried(&message_id, attempt, delay, &reason);
                self.changes.push(change(delay, ChangeKind::Retry), now);
            }
            Verdict::Release(why) => {
                tracing::debug!(queue = %self.setup.scope.queue, message_id, why, "releasing message");
                self.changes
                    .push(change(Duration::ZERO, ChangeKind::Release), now);
            }
            Verdict::DeadLetter {
                message,
                reason,
                cause,
            } => {
                self.count_cause(cause);
                let (out, reason_dropped) =
                    dead_letter_message(&message, &reason, self.setup.dead_letter_fifo);
                if reason_dropped {
                    tracing::error!(queue = %self.setup.scope.queue, message_id, kind = %reason.kind, error = %reason.message,
                        "the dead-letter reason does not fit beside the message's own attributes; it is only in this log");
                }
                self.setup
                    .scope
                    .dead_lettered(&message_id, &reason.kind, &reason.message);
                self.dead.push(
                    DeadEntry {
                        message_id,
                        receipt,
                        out,
                        received_at,
                        attempt: reason.attempt,
                    },
                    now,
                );
            }
        }
    }

    fn count_cause(&mut self, cause: Cause) {
        match cause {
            Cause::Handler => {}
            Cause::Panic => self.report.panics += 1,
            Cause::Timeout => self.report.timeouts += 1,
        }
    }

    fn on_completed(&mut self, done: Completed, now: Instant) {
        match done {
            Completed::Deleted(results) => {
                for (e, r) in results {
                    match r {
                        Ok(()) if e.dead_lettered => self.report.dead_lettered += 1,
                        Ok(()) => {
                            self.report.acked += 1;
                            self.setup.scope.acked(1);
                        }
                        Err(err) => self.settle_failed(
                            "DeleteMessageBatch",
                            &e.message_id,
                            &err.to_string(),
                        ),
                    }
                }
            }
            Completed::Changed(results) => {
                for (c, r) in results {
                    self.on_changed(c, r, now);
                }
            }
            Completed::DeadLettered(results) => {
                for (e, r) in results {
                    match r {
                        Ok(_) => self.deletes.push(
                            DeleteEntry {
                                message_id: e.message_id,
                                receipt: e.receipt,
                                dead_lettered: true,
                            },
                            now,
                        ),
                        Err(err) => {
                            // Not deleted from the source: it comes back after a backoff and is
                            // dead-lettered again (or moved by the queue's own redrive).
                            self.setup.scope.settle_failed(
                                "SendMessageBatch",
                                &e.message_id,
                                &err.to_string(),
                            );
                            let delay = self
                                .setup
                                .retry
                                .delay_for(e.attempt)
                                .min(visibility_budget(e.received_at, now));
                            let c = Change {
                                id: 0,
                                message_id: e.message_id,
                                receipt: e.receipt,
                                timeout: delay,
                                kind: ChangeKind::Retry,
                            };
                            self.changes.push(c, now);
                        }
                    }
                }
            }
        }
    }

    fn on_changed(&mut self, c: Change, r: EntryResult<()>, now: Instant) {
        match (c.kind, r) {
            (ChangeKind::Extend, r) => {
                let Some(lease) = self.leases.get_mut(&c.id) else {
                    return;
                };
                lease.extending = false;
                match r {
                    Ok(()) => {
                        lease.deadline = now + c.timeout;
                        self.report.extensions += 1;
                        self.setup.scope.lease_extended(1);
                    }
                    Err(err) => {
                        lease.lost = true;
                        lease.cancel.cancel();
                        self.setup.scope.lease_lost(&c.message_id, &err.to_string());
                    }
                }
                if let Some(verdict) = self.leases.get_mut(&c.id).and_then(|l| l.deferred.take()) {
                    self.on_decided(c.id, verdict, now);
                }
            }
            (ChangeKind::Retry, Ok(())) => self.report.retried += 1,
            (ChangeKind::Release, Ok(())) => {
                self.report.released += 1;
                self.setup.scope.released(1, "released");
            }
            (_, Err(err)) => self.settle_failed(
                "ChangeMessageVisibilityBatch",
                &c.message_id,
                &err.to_string(),
            ),
        }
    }

    fn settle_failed(&mut self, op: &'static str, message_id: &str, error: &str) {
        self.report.settle_failed += 1;
        self.setup.scope.settle_failed(op, message_id, error);
    }

    fn on_tick(&mut self, now: Instant) {
        self.extend_due_leases(now);
        let interval = self.setup.flush_interval;
        let urgent = self
            .changes
            .items
            .iter()
            .any(|c| c.kind == ChangeKind::Extend);
        if self.changes.due(interval, now, self.draining || urgent) {
            let items = self.changes.take();
            for batch in distinct_batches(items, |c| c.message_id.clone(), |_| 0) {
                self.spawn_changes(batch);
            }
        }
        if self.dead.due(interval, now, self.draining) {
            let items = self.dead.take();
            for batch in distinct_batches(items, |d| d.message_id.clone(), |d| d.out.size()) {
                self.spawn_dead_letters(batch);
            }
        }
        if self.deletes.due(interval, now, self.draining) {
            let items = self.deletes.take();
            for batch in distinct_batches(items, |d| d.message_id.clone(), |_| 0) {
                self.spawn_deletes(batch);
            }
        }
    }

    /// Extends every lease within half its visibility of running out, and with them those within
    /// three quarters, so extensions share batch calls.
    fn extend_due_leases(&mut self, now: Instant) {
        let due = |l: &Lease, part: u32| {
            !l.extending && !l.lost && l.deadline <= now + l.visibility * part / 4
        };
        if !self.leases.values().any(|l| due(l, 2)) {
            return;
        }
        let ids: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| due(l, 3))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            let timeout = lease
                .visibility
                .min(visibility_budget(lease.received_at, now));
            if timeout < Duration::from_secs(1) {
                lease.lost = true;
                lease.cancel.cancel();
                self.setup
                    .scope
                    .lease_lost(&lease.message_id, "the 12-hour visibility limit is reached");
                continue;
            }
            lease.extending = true;
            let c = Change {
                id,
                message_id: lease.message_id.clone(),
                receipt: lease.receipt.clone(),
                timeout,
                kind: ChangeKind::Extend,
            };
            self.changes.push(c, now);
        }
    }

    fn spawn_deletes(&mut self, batch: Vec<DeleteEntry>) {
        self.outstanding += 1;
        let (queue, tx, scope) = (
            self.setup.queue.clone(),
            self.tx.clone(),
            self.setup.scope.clone(),
        );
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

    fn spawn_changes(&mut self, batch: Vec<Change>) {
        self.outstanding += 1;
        let (queue, tx, scope) = (
            self.setup.queue.clone(),
            self.tx.clone(),
            self.setup.scope.clone(),
        );
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

    fn spawn_dead_letters(&mut self, batch: Vec<DeadEntry>) {
        self.outstanding += 1;
        let (dlq, tx, scope) = (
            self.setup.dead_letter.clone(),
            self.tx.clone(),
            self.setup.scope.clone(),
        );
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
}

/// What is left of the 12 hours a message may stay invisible after it was received.
fn visibility_budget(received_at: Instant, now: Instant) -> Duration {
    (received_at + MAX_VISIBILITY_TIMEOUT).saturating_duration_since(now)
}

/// Splits entries into batches of at most 10 and at most the SQS batch size, never putting two
/// entries for the same message in one batch (SQS would refuse or apply only one).
fn distinct_batches<T>(
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

    #[test]
    fn visibility_budget_counts_down_from_twelve_hours() {
        let t = Instant::now();
        assert_eq!(visibility_budget(t, t), MAX_VISIBILITY_TIMEOUT);
        assert_eq!(
            visibility_budget(t, t + MAX_VISIBILITY_TIMEOUT + Duration::from_secs(5)),
            Duration::ZERO
        );
    }
}
