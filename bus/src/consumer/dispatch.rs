//! Handing received messages to handlers: concurrently on standard queues, one at a time per
//! group on FIFO queues, or as whole receives to a batch handler.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::handler::{BatchHandler, Handler, MessageHandler};
use super::job::{Job, JobContext, Ran, run_batch, run_one};
use super::observe::RetryLine;
use super::settler::{Event, Verdict};
use super::span;
use crate::trace::{self, MessageTrace};

type Groups = Arc<Mutex<HashMap<String, VecDeque<Job>>>>;

pub(crate) struct Dispatcher {
    pub ctx: Arc<JobContext>,
    pub handler: Handler,
    pub fifo: bool,
    pub groups: Groups,
    pub tracker: TaskTracker,
    /// Cancelled when shutdown's deadline passes: running handlers stop.
    pub hard_stop: CancellationToken,
    /// Handler slots in all; a batch never waits for more than this.
    pub concurrency_limit: u32,
}

fn lock(groups: &Groups) -> MutexGuard<'_, HashMap<String, VecDeque<Job>>> {
    groups
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn group_of(job: &Job) -> String {
    job.message
        .system
        .message_group_id
        .clone()
        .unwrap_or_default()
}

/// Whether a verdict stops the rest of its FIFO group from running now.
fn holds_back_group(v: &Verdict) -> bool {
    matches!(v, Verdict::Retry { .. } | Verdict::Release(_))
}

/// Runs the handler once for a job, unless shutdown or a lost lease came first; then decides
/// the verdict, inside the run's `process` span (so its log lines carry the message's fields).
///
/// The handler runs with its span's context as the task's [`trace::current`], so whatever it
/// sends continues the trace.
async fn run_job(ctx: &JobContext, handler: MessageHandler, job: &mut Job) -> Verdict {
    let ran = match ctx.slot(1, &job.cancel).await {
        None => Ran::Cancelled,
        Some(_slot) if job.cancel.is_cancelled() => Ran::Cancelled,
        Some(_slot) => {
            let run = job.trace.next_span();
            job.span = span::process(ctx, job, &run);
            let call = trace::scope(run, run_one(ctx, handler, job));
            call.instrument(job.span.clone()).await
        }
    };
    decide(ctx, job, ran)
}

/// The verdict on one run, decided (and logged) inside the run's span.
fn decide(ctx: &JobContext, job: &Job, ran: Ran) -> Verdict {
    job.span.in_scope(|| {
        if let Ran::Failed { label, .. } = &ran {
            span::failed(&job.span, label);
        }
        ctx.verdict(job, ran)
    })
}

impl Dispatcher {
    /// Starts handling the messages of one receive.
    pub fn dispatch(&self, jobs: Vec<Job>) {
        match &self.handler {
            Handler::Batch(h) => self.spawn_batch(h.clone(), jobs),
            Handler::PerMessage(h) if self.fifo => self.enqueue_groups(h, jobs),
            Handler::PerMessage(h) => {
                for job in jobs {
                    self.spawn_one(h.clone(), job);
                }
            }
        }
    }

    fn spawn_one(&self, handler: MessageHandler, mut job: Job) {
        let ctx = self.ctx.clone();
        self.tracker.spawn(async move {
            let verdict = run_job(&ctx, handler, &mut job).await;
            job.settle(verdict);
        });
    }

    fn enqueue_groups(&self, handler: &MessageHandler, jobs: Vec<Job>) {
        let mut groups = lock(&self.groups);
        for job in jobs {
            let group = group_of(&job);
            match groups.get_mut(&group) {
                Some(waiting) => waiting.push_back(job),
                None => {
                    groups.insert(group.clone(), VecDeque::from([job]));
                    self.spawn_group(handler.clone(), group);
                }
            }
        }
    }

    /// Runs one FIFO group's messages in order until none are left.
    ///
    /// A transient failure is retried in place after its backoff: the message keeps its lease,
    /// so the group stays locked on the queue and the messages behind it are neither run out of
    /// order nor received again (which would spend their attempts). Only when the message is
    /// handed back (shutdown, a lost lease) is the rest of the group released.
    fn spawn_group(&self, handler: MessageHandler, group: String) {
        let (ctx, groups) = (self.ctx.clone(), self.groups.clone());
        self.tracker.spawn(async move {
            let _end = GroupEnd {
                groups: groups.clone(),
                group: group.clone(),
            };
            loop {
                let mut next = {
                    let mut g = lock(&groups);
                    match g.get_mut(&group).and_then(VecDeque::pop_front) {
                        Some(job) => job,
                        None => {
                            g.remove(&group);
                            return;
                        }
                    }
                };
                let verdict = run_in_place(&ctx, &handler, &mut next, &groups, &group).await;
                let hold = holds_back_group(&verdict);
                next.settle(verdict);
                if hold {
                    let rest = lock(&groups)
                        .get_mut(&group)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    for job in rest {
                        job.settle(Verdict::Release(
                            "behind a message of its group that was handed back",
                        ));
                    }
                }
            }
        });
    }

    fn spawn_batch(&self, handler: BatchHandler, mut jobs: Vec<Job>) {
        let (ctx, fifo, hard_stop) = (self.ctx.clone(), self.fifo, self.hard_stop.clone());
        let slots = u32::try_from(jobs.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.concurrency_limit);
        self.tracker.spawn(async move {
            // Every job's token is a child of the hard stop: it cancels the wait for slots too.
            let rans = match ctx.slot(slots, &hard_stop).await {
                None => jobs.iter().map(|_| Ran::Cancelled).collect(),
                Some(_slots) => run_traced_batch(&ctx, handler, &mut jobs).await,
            };
            let mut held: HashSet<String> = HashSet::new();
            for (job, ran) in jobs.into_iter().zip(rans) {
                let group = group_of(&job);
                let verdict = if fifo && held.contains(&group) {
                    Verdict::Release("behind a failed message of its group")
                } else {
                    decide(&ctx, &job, ran)
                };
                if fifo && holds_back_group(&verdict) {
                    held.insert(group);
                }
                job.settle(verdict);
            }
        });
    }
}

/// Runs a batch handler in one `process` span for the batch (see [`span::batch`]); every job
/// keeps that span for its verdict.
async fn run_traced_batch(ctx: &JobContext, handler: BatchHandler, jobs: &mut [Job]) -> Vec<Ran> {
    let run = MessageTrace::of_batch(jobs.first().map(|j| &j.trace)).next_span();
    let batch_span = span::batch(ctx, jobs, &run);
    for job in jobs.iter_mut() {
        job.span = batch_span.clone();
    }
    let call = trace::scope(run, run_batch(ctx, handler, jobs));
    call.instrument(batch_span).await
}

/// Removes a group's entry when its task ends, however it ends: a task that died (a bug) must
/// not leave an entry that later messages of the group queue behind with nobody to run them.
/// What is still queued there is dropped, and each job releases its message as it drops.
struct GroupEnd {
    groups: Groups,
    group: String,
}

impl Drop for GroupEnd {
    fn drop(&mut self) {
        let rest = lock(&self.groups).remove(&self.group);
        drop(rest);
    }
}

/// Runs a FIFO message until it succeeds, is dead-lettered, or must be handed back; transient
/// failures wait out their backoff here, and each try counts as an attempt.
///
/// While the head waits, it and the messages of its group behind it are parked: they leave the
/// in-flight limit (for the parking limit), so the pollers go on receiving other groups. A
/// failure holds back only its own group.
async fn run_in_place(
    ctx: &JobContext,
    handler: &MessageHandler,
    job: &mut Job,
    groups: &Groups,
    group: &str,
) -> Verdict {
    loop {
        let verdict = run_job(ctx, handler.clone(), job).await;
        let Verdict::Retry {
            delay,
            cause,
            reason,
            error_type,
            ..
        } = &verdict
        else {
            return verdict;
        };
        let cause = *cause;
        // The delay is at most the 12-hour limit (see `JobContext::verdict`).
        let until = Instant::now() + *delay;
        job.span.in_scope(|| {
            ctx.obs.retry_decided(&RetryLine {
                message_id: &job.message.id,
                attempt: job.attempt(),
                error_type,
                delay: *delay,
                reason,
                in_place: true,
            });
        });
        job.park();
        if let Some(waiting) = lock(groups).get_mut(group) {
            waiting.iter_mut().for_each(Job::park);
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            // Shutting down: hand it back with what is left of its backoff.
            () = ctx.shutdown.cancelled() => return retry_in(verdict, until),
            () = job.cancel.cancelled() => return Verdict::Release("lease lost while waiting to retry"),
        }
        job.retries_in_place += 1;
        let _ = ctx.events.send(Event::RetriedInPlace(cause));
    }
}

/// The same retry verdict, with its delay cut to what is left until `until`.
fn retry_in(verdict: Verdict, until: Instant) -> Verdict {
    match verdict {
        Verdict::Retry {
            attempt,
            reason,
            error_type,
            cause,
            ..
        } => Verdict::Retry {
            delay: until.saturating_duration_since(Instant::now()),
            attempt,
            reason,
            error_type,
            cause,
        },
        other => other,
    }
}
