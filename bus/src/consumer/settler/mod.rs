//! The settler: one task that owns every received message's lease and settles each message
//! exactly once. A message's lease lives from its receive until its settlement is confirmed (or
//! given up on purpose), so the lease is extended while a delete or a dead-letter send is retried,
//! and every outcome is counted once, when the lease is removed.
//!
//! Extensions and deletes may race (an extension that lands after the delete fails harmlessly);
//! a settling visibility change is not sent while an extension of the same message is on the
//! wire, because the two would leave the message with whichever landed last. An extension
//! abandoned on its timeout may still land at SQS after the change: the message then comes back
//! one visibility timeout later than asked, never lost.

mod calls;
mod completions;
mod decide;
mod flush;
mod lease;
mod leases;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use calls::Completed;
use calls::{ChangeEntry, Pending};
pub(crate) use lease::first_deadline;
use lease::{Lease, Phase, Plan, State};
use leases::Leases;

use super::dead_letter::DeadLetterReason;
use super::handle::{SETTLER_HEARTBEAT, Status};
use super::observe::{Observer, Settled};
use super::report::ShutdownReport;
use crate::message::{Message, Receipt};
use crate::retry::RetryPolicy;
use crate::transport::{Queue, Sender};

/// Why a message failed, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The handler returned an error.
    Handler,
    Panic,
    Timeout,
    /// The engine decided (a release at the last receive).
    Engine,
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
        /// The failure's label, bounded as the metric counts it.
        error_type: String,
        cause: Cause,
    },
    /// Send it to the dead-letter queue with the reason, then delete it.
    DeadLetter {
        message: Box<Message>,
        reason: DeadLetterReason,
        cause: Cause,
        /// The queue's redrive would move the message on its next receive: a refused
        /// dead-letter send is tried again while the lease lasts, never handed back.
        last_receive: bool,
    },
    /// Hand it back unprocessed (visibility 0).
    Release(&'static str),
}

/// A received message as the settler first hears of it.
pub(crate) struct Tracked {
    pub id: u64,
    pub message_id: String,
    pub receipt: Receipt,
    pub visibility: Duration,
    /// When the receive call was sent (the 12-hour limit counts from here).
    pub requested_at: Instant,
    /// When its response came (the lease counts from here).
    pub responded_at: Instant,
    pub cancel: CancellationToken,
    /// Its place under the limit of messages held until settled; freed when it leaves.
    pub held: Option<OwnedSemaphorePermit>,
    /// Moves the handler's view of the lease deadline on each confirmed extension.
    pub view: tokio::sync::watch::Sender<Instant>,
}

/// Which message a verdict is for, and what its log line needs.
pub(crate) struct Decision {
    pub id: u64,
    /// The attempt the verdict ends.
    pub attempt: u32,
    /// The span the handler ran in: the decision's log line is written inside it.
    pub span: tracing::Span,
}

pub(crate) enum Event {
    Received(Vec<Tracked>),
    Decided {
        decision: Decision,
        verdict: Verdict,
    },
    Done(Completed),
    /// A FIFO message failed (for this cause) and is being tried again in place.
    RetriedInPlace(Cause),
    /// No more messages will be received: settle what is held, and stop when it is settled or at
    /// `deadline`, whichever comes first.
    Drain {
        deadline: Instant,
    },
}

/// Per-entry error codes that mean the receipt no longer holds the message.
const RECEIPT_GONE: [&str; 2] = ["ReceiptHandleIsInvalid", "MessageNotInflight"];
/// A settling call gets at least this long, however little is left of its lease.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

/// What the settler needs to know about its queue.
pub(crate) struct SettlerSetup {
    /// Where the settler's heartbeat goes.
    pub status: Arc<Status>,
    pub queue: Arc<dyn Queue>,
    pub dead_letter: Arc<dyn Sender>,
    pub dead_letter_fifo: bool,
    pub obs: Arc<Observer>,
    pub flush_interval: Duration,
    pub retry: RetryPolicy,
}

/// How one message left the settler: each is counted once.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Acked,
    Retried,
    Released,
    DeadLettered,
    LeaseLost,
    SettleFailed,
    Abandoned,
}

pub(crate) struct Settler {
    setup: SettlerSetup,
    leases: Leases,
    deletes: Pending<u64>,
    changes: Pending<ChangeEntry>,
    dead: Pending<u64>,
    drain_by: Option<Instant>,
    /// Send whatever is pending at the next flush, full batch or not (a lease was given up).
    flush_now: bool,
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
            leases: Leases::default(),
            deletes: Pending::new(),
            changes: Pending::new(),
            dead: Pending::new(),
            drain_by: None,
            flush_now: false,
            report: ShutdownReport::default(),
            tx,
            rx,
        }
    }

    /// Runs until drained (or the drain deadline); returns how every message was settled.
    pub async fn run(mut self) -> ShutdownReport {
        loop {
            self.setup.status.settler_turned(Instant::now());
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
            let now = Instant::now();
            if self.drain_by.is_some_and(|d| now >= d) {
                self.abandon_all();
                break;
            }
            self.on_tick(now);
            if self.drain_by.is_some() && self.leases.is_empty() {
                break;
            }
        }
        self.report
    }

    /// When to turn the loop next: the first due action, and at least every heartbeat, so a
    /// settler that stopped turning shows in the consumer's status.
    fn next_wake(&mut self) -> Instant {
        let heartbeat = Instant::now() + SETTLER_HEARTBEAT;
        let interval = self.setup.flush_interval;
        let urgent = self
            .changes
            .items
            .iter()
            .any(|c| c.extension)
            .then(Instant::now);
        let flushes = [
            self.deletes.due_at(interval),
            self.changes.due_at(interval),
            self.dead.due_at(interval),
            urgent,
            self.drain_by,
        ];
        flushes
            .into_iter()
            .flatten()
            .chain(self.leases.next_action())
            .min()
            .map_or(heartbeat, |at| at.min(heartbeat))
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Received(tracked) => {
                self.report.received += tracked.len() as u64;
                self.setup.obs.received(tracked.len());
                self.setup.status.held(tracked.len());
                for t in tracked {
                    let mut lease = Lease::new(
                        t.message_id,
                        t.receipt,
                        t.requested_at,
                        t.responded_at,
                        t.visibility,
                        t.cancel,
                    );
                    lease.held = t.held;
                    lease.view = Some(t.view);
                    self.leases.insert(t.id, lease, now);
                }
            }
            Event::Decided { decision, verdict } => {
                let span = decision.span.clone();
                span.in_scope(|| self.on_decided(&decision, verdict, now));
            }
            Event::Done(done) => self.on_completed(done, now),
            Event::RetriedInPlace(cause) => {
                self.count_cause(cause);
                self.report.retried_in_place += 1;
                self.setup.obs.retried_in_place();
            }
            Event::Drain { deadline } => self.drain_by = Some(deadline),
        }
    }

    fn count_cause(&mut self, cause: Cause) {
        match cause {
            Cause::Handler | Cause::Engine => {}
            Cause::Panic => self.report.panics += 1,
            Cause::Timeout => self.report.timeouts += 1,
        }
    }

    /// Removes a message and counts how it left: the one place outcomes are counted.
    fn finish(&mut self, id: u64, outcome: Outcome) {
        if self.leases.remove(&id).is_none() {
            return;
        }
        let r = &mut self.report;
        let (count, settled) = match outcome {
            Outcome::Acked => (&mut r.acked, Settled::Succeeded),
            Outcome::Retried => (&mut r.retried, Settled::Retried),
            Outcome::Released => (&mut r.released, Settled::Released),
            Outcome::DeadLettered => (&mut r.dead_lettered, Settled::DeadLettered),
            Outcome::LeaseLost => (&mut r.lease_lost, Settled::LeaseLost),
            Outcome::SettleFailed => (&mut r.settle_failed, Settled::SettleFailed),
            Outcome::Abandoned => (&mut r.abandoned, Settled::Abandoned),
        };
        *count += 1;
        // The drain began when the shutdown did, before the settler hears of its deadline
        // (handlers may still be finishing then, and their settlements are the drain's).
        let draining = self.drain_by.is_some() || self.setup.status.is_stopping();
        if matches!(outcome, Outcome::SettleFailed) && draining {
            r.settle_failed_in_drain += 1;
        }
        self.setup.obs.settled(settled);
        self.setup.status.released();
    }

    /// The drain deadline passed: whatever is still held reappears after its visibility timeout.
    fn abandon_all(&mut self) {
        let ids = self.leases.ids();
        if !ids.is_empty() {
            tracing::warn!(queue = %self.setup.obs.queue, count = ids.len(),
                "shutdown deadline passed with messages not yet settled; they reappear after their visibility timeout");
        }
        for id in ids {
            if let Some(l) = self.leases.get(&id) {
                l.cancel.cancel();
            }
            self.finish(id, Outcome::Abandoned);
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.tend_leases(now);
        self.flush(now);
        self.setup.obs.report_held_back();
    }

    /// Extends leases that are due (with those within three quarters, so they share calls),
    /// gives up those that cannot be kept, and queues settlements whose backoff is over. Only
    /// the leases the index finds due are visited.
    fn tend_leases(&mut self, now: Instant) {
        let due = self.leases.due(now);
        let mut lost: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut turn = Vec::new();
        for id in due.ids {
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            match lease.plan(now, due.coalesce) {
                Plan::Extend(timeout) => {
                    lease.extending = true;
                    let c = ChangeEntry {
                        id,
                        receipt: lease.receipt.clone(),
                        timeout,
                        extension: true,
                        issued: now,
                    };
                    self.changes.push(c, now);
                }
                Plan::GiveUp(why) => match &mut lease.state {
                    State::Running => {
                        lease.state = State::Lost;
                        lease.cancel.cancel();
                        lost.entry(why).or_default().push(lease.message_id.clone());
                    }
                    // One last try, sent at once; its answer decides.
                    State::Settling(s) if !s.given_up => {
                        s.given_up = true;
                        self.flush_now = true;
                        if matches!(s.phase, Phase::Ready | Phase::Backoff(_)) {
                            s.phase = Phase::Ready;
                        }
                    }
                    State::Settling(_) | State::Lost => {}
                },
                Plan::Wait => {}
            }
            if let State::Settling(s) = &lease.state
                && (matches!(s.phase, Phase::Ready)
                    || matches!(s.phase, Phase::Backoff(at) if at <= now))
            {
                turn.push(id);
            }
        }
        for (why, ids) in lost {
            self.setup.obs.leases_lost(&ids, why);
        }
        for id in turn {
            self.ready(id, now);
        }
    }
}
