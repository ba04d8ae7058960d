//! A long-poll loop: waits for room under the in-flight limit, receives, and hands the messages
//! over. A slow handler never blocks the next poll; only the in-flight limit does.
//!
//! **Partial receives.** A full batch of 10 is the cheapest receive, but waiting for ten free
//! slots while a few slow handlers hold the rest leaves messages waiting in the queue with slots
//! free. So a poller takes the free slots it finds (at least one), waits up to `receive_fill_wait`
//! for the rest of a batch, and then receives as many messages as it has slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::LeaseView;
use super::dispatch::Dispatcher;
use super::handle::Status;
use super::job::{Job, JobContext};
use super::observe::Operation;
use super::scaler::{Answer, Scaler};
use super::settler::{Event, Tracked, Verdict, first_deadline};
use crate::error::BusError;
use crate::message::{Message, ReceiveRequest};
use crate::transport::Queue;

/// A receive that is not cancel-safe gets this long beyond its long-poll wait before it is
/// abandoned as hung (its messages, if any, return after their visibility timeout).
pub(crate) const RECEIVE_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Poller {
    /// Which poller of the consumer this is (its slot in the status).
    pub index: usize,
    pub queue: Arc<dyn Queue>,
    pub ctx: Arc<JobContext>,
    pub dispatcher: Arc<Dispatcher>,
    pub in_flight: Arc<Semaphore>,
    /// Messages held until their settlement is confirmed, decided or not: a bound that pauses
    /// polling while settlements cannot complete (a delete outage) instead of piling up leases.
    pub held: Arc<Semaphore>,
    /// The receive to make; `max_messages` is the most it asks for.
    pub request: ReceiveRequest,
    pub fill_wait: Duration,
    pub next_id: Arc<AtomicU64>,
    pub hard_stop: CancellationToken,
    /// Abandon a receive that is on the wire (shutdown's deadline, or the engine was dropped).
    pub stop_now: CancellationToken,
    pub status: Arc<Status>,
    /// Polling waits while this is closed.
    pub gate: Option<super::PauseGate>,
    /// How many of the consumer's pollers run; this one parks while its index is not below it.
    pub scaler: Arc<Scaler>,
}

fn error_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter()
        .build()
}

impl Poller {
    pub async fn run(self) {
        let shutdown = self.ctx.shutdown.clone();
        let mut backoff = error_backoff();
        loop {
            if !self.scaler.runs(self.index) {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    () = self.scaler.until_runs(self.index) => {}
                }
            }
            if let Some(gate) = &self.gate {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    () = gate.opened() => {}
                }
            }
            // Parked while it waits for slots: it lets go of those it took at once, so the loops
            // that still run get them (rather than after a whole `fill_wait`).
            let permits = tokio::select! {
                biased;
                p = self.slots() => p,
                () = self.scaler.until_parked(self.index) => continue,
            };
            let Some(permits) = permits else {
                return;
            };
            // Closed or parked while this poller waited for slots: receive nothing until it opens
            // or this poller runs again.
            if self.gate.as_ref().is_some_and(|g| g.paused().is_some())
                || !self.scaler.runs(self.index)
            {
                drop(permits);
                continue;
            }
            let held = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                p = self.held.clone().acquire_many_owned(u32::try_from(permits.num_permits()).unwrap_or(u32::MAX)) => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let request = ReceiveRequest {
                max_messages: permits.num_permits(),
                ..self.request.clone()
            };
            let requested_at = Instant::now();
            let Some(result) = self.receive_observed(&request, requested_at).await else {
                return;
            };
            let responded_at = Instant::now();
            match result {
                Ok(messages) => {
                    self.scaler.record(Answer::Got {
                        asked: request.max_messages,
                        got: messages.len(),
                    });
                    backoff = error_backoff();
                    self.status.received(responded_at);
                    self.hand_over(messages, (permits, held), requested_at, responded_at);
                }
                Err(e) => {
                    drop((permits, held));
                    self.scaler.record(Answer::Failed);
                    self.status.receive_failed();
                    self.ctx.obs.api_error(Operation::Receive, 0, &e);
                    let pause = backoff.next().unwrap_or(Duration::from_secs(30));
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// One receive, on the wire in the status while it lasts, then timed and counted; `None`
    /// when the poller must stop without its answer.
    async fn receive_observed(
        &self,
        request: &ReceiveRequest,
        requested_at: Instant,
    ) -> Option<Result<Vec<Message>, BusError>> {
        self.status.receive_sent(self.index, requested_at);
        let result = self.receive(request).await;
        self.status.receive_done(self.index);
        let result = result?;
        let obs = &self.ctx.obs;
        let received = result.as_ref().ok().map(Vec::as_slice);
        obs.receive_answered(requested_at.elapsed(), received);
        obs.report_held_back();
        Some(result)
    }

    /// One receive; `None` when the poller must stop without its answer.
    async fn receive(&self, request: &ReceiveRequest) -> Option<Result<Vec<Message>, BusError>> {
        let receive = self.queue.receive(request);
        if self.queue.receive_is_cancel_safe() {
            return tokio::select! {
                biased;
                () = self.ctx.shutdown.cancelled() => None,
                r = receive => Some(r),
            };
        }
        // The server may already have handed out messages: let the call finish and release what
        // it returns if shutdown began meanwhile, unless shutdown's deadline comes first.
        let limit = request.wait_time + RECEIVE_GRACE;
        tokio::select! {
            biased;
            () = self.stop_now.cancelled() => None,
            r = tokio::time::timeout(limit, receive) => Some(match r {
                Ok(r) => r,
                Err(_) => Err(BusError::timeout(&self.ctx.queue, "ReceiveMessage", limit)),
            }),
        }
    }

    /// Waits for at least one free slot, takes up to a batch, and waits up to `fill_wait` for
    /// the rest of the batch; `None` once shutdown has begun.
    async fn slots(&self) -> Option<OwnedSemaphorePermit> {
        let shutdown = &self.ctx.shutdown;
        let batch = self.request.max_messages;
        let mut permits = tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            p = self.in_flight.clone().acquire_owned() => p.ok()?,
        };
        self.top_up(&mut permits, batch);
        let until = Instant::now() + self.fill_wait;
        while permits.num_permits() < batch {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep_until(until) => break,
                p = self.in_flight.clone().acquire_owned() => match p {
                    Ok(p) => permits.merge(p),
                    Err(_) => return None,
                },
            }
            self.top_up(&mut permits, batch);
        }
        Some(permits)
    }

    /// Takes free slots without waiting, up to `batch`.
    fn top_up(&self, permits: &mut OwnedSemaphorePermit, batch: usize) {
        while permits.num_permits() < batch {
            match self.in_flight.clone().try_acquire_owned() {
                Ok(p) => permits.merge(p),
                Err(_) => return,
            }
        }
    }

    fn hand_over(
        &self,
        messages: Vec<Message>,
        (mut permits, mut held): (OwnedSemaphorePermit, OwnedSemaphorePermit),
        requested_at: Instant,
        responded_at: Instant,
    ) {
        if messages.is_empty() {
            return;
        }
        let mut tracked = Vec::with_capacity(messages.len());
        let mut jobs = Vec::with_capacity(messages.len());
        for message in messages {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let cancel = self.hard_stop.child_token();
            let permit = permits.split(1);
            if permit.is_none() {
                // More messages than asked for: a transport bug; the message is still handled.
                tracing::error!("receive returned more messages than requested");
            }
            let visibility = self.request.visibility_timeout.unwrap_or_default();
            let (view, lease) = LeaseView::channel(first_deadline(responded_at, visibility));
            tracked.push(Tracked {
                id,
                message_id: message.id.clone(),
                receipt: message.receipt.clone(),
                visibility,
                requested_at,
                responded_at,
                cancel: cancel.clone(),
                held: held.split(1),
                view,
            });
            let ctx = self.ctx.clone();
            jobs.push(Job::new(id, message, (cancel, lease), permit, ctx));
        }
        drop((permits, held));
        // The settler learns of the leases before any verdict can reach it.
        let _ = self.ctx.events.send(Event::Received(tracked));
        if self.ctx.shutdown.is_cancelled() {
            for job in jobs {
                job.settle(Verdict::Release("received during shutdown"));
            }
            return;
        }
        self.dispatcher.dispatch(jobs);
    }
}
