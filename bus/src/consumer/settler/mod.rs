//! The settler: one task that owns every in-flight message's lease and settles each message
//! exactly once. Because leases and settlements live in one task, an extension is never sent
//! after (or raced against) the delete of the same message.

mod calls;
mod completions;
mod lease;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use calls::Completed;
use calls::{Change, ChangeKind, DeadEntry, DeleteEntry, Pending, distinct_batches};
use lease::{Lease, Plan, visibility_budget};

use super::dead_letter::{DeadLetterReason, dead_letter_message};
use super::report::ShutdownReport;
use crate::events::Scope;
use crate::message::{Message, Receipt};
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
    /// When the receive call was sent.
    pub received_at: Instant,
    pub cancel: CancellationToken,
}

pub(crate) enum Event {
    Received(Vec<Tracked>),
    Decided {
        id: u64,
        verdict: Verdict,
    },
    Done(Completed),
    /// A FIFO message failed and is being tried again in place.
    RetriedInPlace,
    /// Every handler has finished: flush everything and stop.
    Drain,
}

/// Per-entry error codes that mean the receipt no longer holds the message.
const RECEIPT_GONE: [&str; 2] = ["ReceiptHandleIsInvalid", "MessageNotInflight"];

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
        let leases = self.leases.values().filter_map(Lease::next_action);
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
                    self.leases.insert(
                        t.id,
                        Lease::new(
                            t.message_id,
                            t.receipt,
                            t.received_at,
                            t.visibility,
                            t.cancel,
                        ),
                    );
                }
            }
            Event::Decided { id, verdict } => self.on_decided(id, verdict, now),
            Event::Done(done) => {
                self.outstanding -= 1;
                self.on_completed(done, now);
            }
            Event::RetriedInPlace => {
                self.report.retried_in_place += 1;
                self.setup.scope.retried_in_place();
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
            issued: now,
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
                    .retry_decided(&message_id, attempt, delay, &reason);
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
                let out = dead_letter_message(&message, &reason, self.setup.dead_letter_fifo);
                if out.note.is_some() {
                    tracing::warn!(queue = %self.setup.scope.queue, message_id, kind = %reason.kind,
                        "the dead-letter reason does not fit on the message; it goes in a note before it");
                }
                let (first, then) = match out.note {
                    Some(note) => (note, Some(out.message)),
                    None => (out.message, None),
                };
                self.setup
                    .scope
                    .dead_letter_decided(&message_id, &reason.kind, &reason.message);
                self.dead.push(
                    DeadEntry {
                        message_id,
                        receipt,
                        out: first,
                        then,
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

    fn on_tick(&mut self, now: Instant) {
        self.tend_leases(now);
        let interval = self.setup.flush_interval;
        let (queue, scope) = (&self.setup.queue, &self.setup.scope);
        let urgent = self
            .changes
            .items
            .iter()
            .any(|c| c.kind == ChangeKind::Extend);
        if self.changes.due(interval, now, self.draining || urgent) {
            for batch in distinct_batches(self.changes.take(), |c| c.message_id.clone(), |_| 0) {
                self.outstanding += 1;
                calls::spawn_changes(queue.clone(), scope.clone(), self.tx.clone(), batch);
            }
        }
        if self.dead.due(interval, now, self.draining) {
            for batch in
                distinct_batches(self.dead.take(), |d| d.message_id.clone(), |d| d.out.size())
            {
                self.outstanding += 1;
                calls::spawn_dead_letters(
                    self.setup.dead_letter.clone(),
                    scope.clone(),
                    self.tx.clone(),
                    batch,
                );
            }
        }
        if self.deletes.due(interval, now, self.draining) {
            for batch in distinct_batches(self.deletes.take(), |d| d.message_id.clone(), |_| 0) {
                self.outstanding += 1;
                calls::spawn_deletes(queue.clone(), scope.clone(), self.tx.clone(), batch);
            }
        }
    }

    /// Extends every lease within half its visibility of running out, and with them those within
    /// three quarters so extensions share batch calls; stops handlers whose lease cannot be kept.
    fn tend_leases(&mut self, now: Instant) {
        let extend_now = self.leases.values().any(|l| l.within(now, 2));
        for (id, lease) in &mut self.leases {
            if lease.lost || lease.extending {
                continue;
            }
            let consider =
                lease.capped || now >= lease.deadline || (extend_now && lease.within(now, 3));
            if !consider {
                continue;
            }
            match lease.plan(now) {
                Plan::Extend(timeout) => {
                    lease.extending = true;
                    let c = Change {
                        id: *id,
                        message_id: lease.message_id.clone(),
                        receipt: lease.receipt.clone(),
                        timeout,
                        kind: ChangeKind::Extend,
                        issued: now,
                    };
                    self.changes.push(c, now);
                }
                Plan::Stop(why) => {
                    lease.lose();
                    self.setup.scope.lease_lost(&lease.message_id, why);
                }
                Plan::Wait => {}
            }
        }
    }
}
