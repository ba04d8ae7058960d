//! Handing received messages to handlers: concurrently on standard queues, one at a time per
//! group on FIFO queues, or as whole receives to a batch handler.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::{BatchHandler, Handler, MessageHandler};
use super::job::{Job, JobContext, Ran, run_batch, run_one};
use super::settler::Verdict;

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

    fn spawn_one(&self, handler: MessageHandler, job: Job) {
        let ctx = self.ctx.clone();
        self.tracker.spawn(async move {
            let ran = match ctx.slot(1).await {
                None => Ran::Cancelled,
                Some(_slot) if job.cancel.is_cancelled() => Ran::Cancelled,
                Some(_slot) => run_one(&ctx, handler, &job).await,
            };
            let verdict = ctx.verdict(&job.message, ran);
            ctx.settle(job.id, verdict);
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

    /// Runs one FIFO group's messages in order until none are left. A message that is retried or
    /// released holds back the rest of its group: they are released, never run out of order.
    fn spawn_group(&self, handler: MessageHandler, group: String) {
        let (ctx, groups) = (self.ctx.clone(), self.groups.clone());
        self.tracker.spawn(async move {
            loop {
                let next = {
                    let mut g = lock(&groups);
                    match g.get_mut(&group).and_then(VecDeque::pop_front) {
                        Some(job) => job,
                        None => {
                            g.remove(&group);
                            return;
                        }
                    }
                };
                let ran = match ctx.slot(1).await {
                    None => Ran::Cancelled,
                    Some(_slot) if next.cancel.is_cancelled() => Ran::Cancelled,
                    Some(_slot) => run_one(&ctx, handler.clone(), &next).await,
                };
                let verdict = ctx.verdict(&next.message, ran);
                let hold = holds_back_group(&verdict);
                ctx.settle(next.id, verdict);
                if hold {
                    let rest = lock(&groups)
                        .get_mut(&group)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    for job in rest {
                        ctx.settle(
                            job.id,
                            Verdict::Release("behind a failed message of its group"),
                        );
                    }
                }
            }
        });
    }

    fn spawn_batch(&self, handler: BatchHandler, jobs: Vec<Job>) {
        let (ctx, fifo, hard_stop) = (self.ctx.clone(), self.fifo, self.hard_stop.clone());
        let slots = u32::try_from(jobs.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.concurrency_limit);
        self.tracker.spawn(async move {
            let rans = match ctx.slot(slots).await {
                None => jobs.iter().map(|_| Ran::Cancelled).collect(),
                Some(_slots) => run_batch(&ctx, handler, &jobs, &hard_stop).await,
            };
            let mut held: HashSet<String> = HashSet::new();
            for (job, ran) in jobs.iter().zip(rans) {
                let group = group_of(job);
                let verdict = if fifo && held.contains(&group) {
                    Verdict::Release("behind a failed message of its group")
                } else {
                    ctx.verdict(&job.message, ran)
                };
                if fifo && holds_back_group(&verdict) {
                    held.insert(group);
                }
                ctx.settle(job.id, verdict);
            }
        });
    }
}
