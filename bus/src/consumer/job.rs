//! Running handlers: each message (or batch) in its own task, with its panic caught, its time
//! bounded and its cancellation honoured, ending in exactly one verdict for the settler.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Span;

use super::LeaseView;
use super::dead_letter::DeadLetterReason;
use super::handler::{BatchHandler, Delivery, FailureKind, HandlerError, MessageHandler};
use super::observe::Observer;
use super::settler::{Cause, Decision, Event, Verdict};
use crate::limits::MAX_VISIBILITY_TIMEOUT;
use crate::message::Message;
use crate::retry::RetryPolicy;
use crate::trace::MessageTrace;

/// A received message's place under the consumer's limits. The permit is held, never read:
/// dropping it (when the job ends) frees the slot.
#[allow(dead_code)]
enum Slot {
    /// It counts against the in-flight limit.
    InFlight(OwnedSemaphorePermit),
    /// It waits behind its FIFO group's head, which waits out a backoff: it counts against the
    /// parking limit instead, so other groups can be received meanwhile.
    Parked(OwnedSemaphorePermit),
    /// A transport returned more messages than asked for (a bug): handled all the same.
    Over,
}

/// A received message on its way to a handler. It gives the settler exactly one verdict: the
/// one it is settled with, or, if its task ends without one (a bug), a release.
pub(crate) struct Job {
    pub id: u64,
    /// Shared with the handler's [`Delivery`].
    pub message: Arc<Message>,
    /// Cancelled when the lease is lost or shutdown's deadline passes.
    pub cancel: CancellationToken,
    /// The lease's deadline as the settler last confirmed it.
    pub lease: LeaseView,
    /// Attempts made in this process beyond the receive count (FIFO retries in place).
    pub retries_in_place: u32,
    /// The trace the message arrived in.
    pub trace: MessageTrace,
    /// The span of the handler's latest run (none before it runs): the settler logs the
    /// decision inside it, so that line carries the message's fields too.
    pub span: Span,
    slot: Slot,
    ctx: Arc<JobContext>,
    settled: bool,
}

impl Job {
    pub fn new(
        id: u64,
        message: Message,
        (cancel, lease): (CancellationToken, LeaseView),
        permit: Option<OwnedSemaphorePermit>,
        ctx: Arc<JobContext>,
    ) -> Self {
        Self {
            id,
            trace: MessageTrace::of(&message),
            span: Span::none(),
            message: Arc::new(message),
            cancel,
            lease,
            retries_in_place: 0,
            slot: permit.map_or(Slot::Over, Slot::InFlight),
            ctx,
            settled: false,
        }
    }

    /// This attempt, 1-based: the receive count, plus the tries made in place in this process.
    pub fn attempt(&self) -> u32 {
        self.message
            .system
            .receive_count
            .max(1)
            .saturating_add(self.retries_in_place)
    }

    /// Moves the message from the in-flight limit to the parking limit, if the parking limit has
    /// room (else it keeps holding its in-flight slot).
    pub fn park(&mut self) {
        if let Slot::InFlight(_) = self.slot
            && let Ok(p) = self.ctx.parking.clone().try_acquire_owned()
        {
            self.slot = Slot::Parked(p);
        }
    }

    /// Writes the decision's one log line and hands the verdict to the settler.
    pub fn settle(mut self, verdict: Verdict) {
        self.settled = true;
        let verdict = self.ctx.last_receive_guard(&self.message, verdict);
        let decision = Decision {
            id: self.id,
            attempt: self.attempt(),
            span: self.span.clone(),
        };
        send(&self.ctx.events, decision, verdict);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.settled {
            tracing::error!(id = self.id, message_id = %self.message.id, "a handler task ended without a verdict; releasing the message");
            let verdict = Verdict::Release("handler task ended without a verdict");
            let verdict = self.ctx.last_receive_guard(&self.message, verdict);
            let decision = Decision {
                id: self.id,
                attempt: self.attempt(),
                span: self.span.clone(),
            };
            send(&self.ctx.events, decision, verdict);
        }
    }
}

fn send(events: &UnboundedSender<Event>, decision: Decision, verdict: Verdict) {
    let id = decision.id;
    // The settler outlives every job but a stuck one at the shutdown deadline.
    if events.send(Event::Decided { decision, verdict }).is_err() {
        tracing::error!(
            id,
            "settler gone; the message will reappear after its visibility timeout"
        );
    }
}

/// What every job of one consumer shares.
pub(crate) struct JobContext {
    pub queue: Arc<str>,
    pub obs: Arc<Observer>,
    pub max_attempts: u32,
    /// The queue's redrive policy moves a message to the dead-letter queue on the receive after
    /// its `max_attempts`-th.
    pub redrive: bool,
    pub handler_timeout: Duration,
    pub handler_name: String,
    pub retry: RetryPolicy,
    pub concurrency: Arc<Semaphore>,
    /// Room for messages parked behind a FIFO head waiting out its backoff.
    pub parking: Arc<Semaphore>,
    /// Stop starting handlers: shutdown has begun.
    pub shutdown: CancellationToken,
    pub events: UnboundedSender<Event>,
    /// Rewrites handler error texts before they are logged or dead-lettered.
    pub redactor: Option<super::Redactor>,
}

/// How one handler run ended, before retry policy is applied.
pub(crate) enum Ran {
    Ok,
    Failed {
        kind: FailureKind,
        label: String,
        message: String,
        delay: Option<Duration>,
        cause: Cause,
    },
    /// Cancelled (lease lost or shutdown deadline): the message goes back untouched.
    Cancelled,
}

impl Ran {
    fn from_error(e: &HandlerError) -> Self {
        Ran::Failed {
            kind: e.kind(),
            label: e.label().to_owned(),
            message: e.cause_text(),
            delay: e.requested_delay(),
            cause: Cause::Handler,
        }
    }

    fn transient(label: &str, message: String, cause: Cause) -> Self {
        Ran::Failed {
            kind: FailureKind::Transient,
            label: label.to_owned(),
            message,
            delay: None,
            cause,
        }
    }
}

impl JobContext {
    /// A message handed back at its last receive would go to the dead-letter queue through the
    /// queue's redrive, with no reason, on its next receive: it is dead-lettered now instead,
    /// with its own reason.
    pub fn last_receive_guard(&self, message: &Message, verdict: Verdict) -> Verdict {
        let Verdict::Release(why) = verdict else {
            return verdict;
        };
        if !self.at_last_receive(message) {
            return verdict;
        }
        let receives = message.system.receive_count;
        let why = format!(
            "handed back unprocessed ({why}) at receive {receives} of {}: one more receive would move it to the dead-letter queue without a reason",
            self.max_attempts
        );
        self.dead_letter(
            message,
            "released_at_last_receive".to_owned(),
            why,
            receives,
            Cause::Engine,
        )
    }

    /// A dead-letter verdict with its reason.
    fn dead_letter(
        &self,
        message: &Message,
        kind: String,
        why: String,
        attempt: u32,
        cause: Cause,
    ) -> Verdict {
        let reason = DeadLetterReason {
            kind,
            message: why,
            attempt,
            handler: self.handler_name.clone(),
            queue: self.queue.to_string(),
            message_id: message.id.clone(),
        };
        Verdict::DeadLetter {
            message: Box::new(message.clone()),
            reason,
            cause,
            last_receive: self.at_last_receive(message),
        }
    }

    /// Whether the queue's redrive policy moves this message on its next receive.
    fn at_last_receive(&self, message: &Message) -> bool {
        self.redrive && message.system.receive_count >= self.max_attempts
    }

    pub fn delivery(&self, job: &Job) -> Delivery {
        Delivery {
            message: Arc::clone(&job.message),
            attempt: job.attempt(),
            max_attempts: self.max_attempts,
            queue: self.queue.clone(),
            cancel: job.cancel.clone(),
            lease: job.lease.clone(),
        }
    }

    /// Turns how a handler ended into a settlement: retry with backoff, or dead-letter when the
    /// failure is permanent or this was the last attempt.
    pub fn verdict(&self, job: &Job, ran: Ran) -> Verdict {
        let (message, attempt) = (&job.message, job.attempt());
        match ran {
            Ran::Ok => Verdict::Ack,
            Ran::Cancelled => Verdict::Release("cancelled"),
            Ran::Failed {
                kind,
                label,
                message: text,
                delay,
                cause,
            } => {
                let text = match &self.redactor {
                    Some(redact) => redact(&text),
                    None => text,
                };
                let error_type = self.obs.handler_failed(&label).to_owned();
                let last = attempt >= self.max_attempts;
                if kind == FailureKind::Permanent || last {
                    let text = if kind == FailureKind::Transient {
                        format!(
                            "gave up after attempt {attempt} of {}: {text}",
                            self.max_attempts
                        )
                    } else {
                        text
                    };
                    self.dead_letter(message, label, text, attempt, cause)
                } else {
                    // A handler may ask for any delay; SQS holds a message 12 hours at most.
                    let delay = delay
                        .unwrap_or_else(|| self.retry.delay_for(attempt))
                        .min(MAX_VISIBILITY_TIMEOUT);
                    Verdict::Retry {
                        delay,
                        attempt,
                        reason: text,
                        error_type,
                        cause,
                    }
                }
            }
        }
    }

    /// Waits for a handler slot; `None` if shutdown began first, or `cancel` fired (a lost
    /// lease): the message is then released without running.
    pub async fn slot(&self, n: u32, cancel: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            () = cancel.cancelled() => None,
            p = self.concurrency.clone().acquire_many_owned(n) => p.ok(),
        }
    }
}

pub(crate) fn panic_text(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned())
}

/// Runs a per-message handler with its panic caught, its time bounded and its cancellation
/// honoured.
pub(crate) async fn run_one(ctx: &JobContext, handler: MessageHandler, job: &Job) -> Ran {
    let delivery = ctx.delivery(job);
    let started = Instant::now();
    let call = AssertUnwindSafe(handler.oneshot(delivery)).catch_unwind();
    let ran = tokio::select! {
        r = tokio::time::timeout(ctx.handler_timeout, call) => match r {
            Err(_) => Ran::transient("timeout", format!("handler exceeded its {:?} timeout", ctx.handler_timeout), Cause::Timeout),
            Ok(Err(panic)) => Ran::transient("panic", format!("handler panicked: {}", panic_text(&*panic)), Cause::Panic),
            Ok(Ok(Ok(()))) => Ran::Ok,
            Ok(Ok(Err(e))) => Ran::from_error(&e),
        },
        () = job.cancel.cancelled() => Ran::Cancelled,
    };
    ctx.obs.handler_time(started.elapsed());
    ran
}

/// Completes when the first job's cancellation fires (never for no jobs).
async fn any_cancelled(jobs: &[Job]) {
    if jobs.is_empty() {
        return std::future::pending().await;
    }
    futures::future::select_all(jobs.iter().map(|j| Box::pin(j.cancel.cancelled()))).await;
}

/// Runs a batch handler over the jobs of one receive; one outcome per job. The whole batch is
/// cancelled as soon as any of its messages' leases is given up (or shutdown's deadline passes):
/// a batch handler cannot be stopped for one message alone, and that message must not be handled
/// on after another consumer may have it.
pub(crate) async fn run_batch(ctx: &JobContext, handler: BatchHandler, jobs: &[Job]) -> Vec<Ran> {
    let deliveries: Vec<Delivery> = jobs.iter().map(|j| ctx.delivery(j)).collect();
    let n = deliveries.len();
    let started = Instant::now();
    let call = AssertUnwindSafe(handler.oneshot(deliveries)).catch_unwind();
    let all = |make: &dyn Fn() -> Ran| (0..n).map(|_| make()).collect::<Vec<_>>();
    let outcome = tokio::select! {
        r = tokio::time::timeout(ctx.handler_timeout, call) => match r {
            Err(_) => all(&|| Ran::transient("timeout", format!("batch handler exceeded its {:?} timeout", ctx.handler_timeout), Cause::Timeout)),
            Ok(Err(panic)) => {
                let text = panic_text(&*panic);
                all(&|| Ran::transient("panic", format!("batch handler panicked: {text}"), Cause::Panic))
            }
            Ok(Ok(Err(e))) => all(&|| Ran::from_error(&e)),
            Ok(Ok(Ok(results))) if results.len() != n => {
                let text = format!("batch handler returned {} outcomes for {n} messages", results.len());
                all(&|| Ran::transient("bad_batch_result", text.clone(), Cause::Handler))
            }
            Ok(Ok(Ok(results))) => results.into_iter().map(|r| match r { Ok(()) => Ran::Ok, Err(e) => Ran::from_error(&e) }).collect(),
        },
        () = any_cancelled(jobs) => all(&|| Ran::Cancelled),
    };
    ctx.obs.handler_time(started.elapsed());
    // A message whose own lease was lost is not settled from the batch's outcome.
    outcome
        .into_iter()
        .zip(jobs)
        .map(|(ran, job)| {
            if job.cancel.is_cancelled() {
                Ran::Cancelled
            } else {
                ran
            }
        })
        .collect()
}
