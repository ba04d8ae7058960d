//! A long-poll loop: waits for room under the in-flight limit, receives a full batch, and hands
//! it over. A slow handler never blocks the next poll; only the in-flight limit does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dispatch::Dispatcher;
use super::job::{Job, JobContext};
use super::settler::{Event, Tracked, Verdict};
use crate::error::BusError;
use crate::message::{Message, ReceiveRequest};
use crate::transport::Queue;

/// A receive that is not cancel-safe gets this long beyond its long-poll wait before it is
/// abandoned as hung (its messages, if any, return after their visibility timeout).
const RECEIVE_GRACE: Duration = Duration::from_secs(30);

pub(crate) struct Poller {
    pub queue: Arc<dyn Queue>,
    pub ctx: Arc<JobContext>,
    pub dispatcher: Arc<Dispatcher>,
    pub in_flight: Arc<Semaphore>,
    pub request: ReceiveRequest,
    pub next_id: Arc<AtomicU64>,
    pub hard_stop: CancellationToken,
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
        let batch = u32::try_from(self.request.max_messages).unwrap_or(1);
        let mut backoff = error_backoff();
        loop {
            let permits = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                p = self.in_flight.clone().acquire_many_owned(batch) => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let sent = Instant::now();
            let receive = self.queue.receive(&self.request);
            let result = if self.queue.receive_is_cancel_safe() {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    r = receive => r,
                }
            } else {
                // The server may already have handed out messages: let the call finish and
                // release what it returns if shutdown began meanwhile.
                match tokio::time::timeout(self.request.wait_time + RECEIVE_GRACE, receive).await {
                    Ok(r) => r,
                    Err(_) => Err(BusError::timeout(
                        &self.ctx.queue,
                        "ReceiveMessage",
                        self.request.wait_time + RECEIVE_GRACE,
                    )),
                }
            };
            self.ctx.scope.api_call("ReceiveMessage");
            match result {
                Ok(messages) => {
                    backoff = error_backoff();
                    self.hand_over(messages, permits, sent);
                }
                Err(e) => {
                    drop(permits);
                    self.ctx.scope.api_error("ReceiveMessage", &e);
                    let pause = backoff.next().unwrap_or(Duration::from_secs(30));
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    fn hand_over(
        &self,
        messages: Vec<Message>,
        mut permits: tokio::sync::OwnedSemaphorePermit,
        sent: Instant,
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
            tracked.push(Tracked {
                id,
                message_id: message.id.clone(),
                receipt: message.receipt.clone(),
                visibility: self.request.visibility_timeout.unwrap_or_default(),
                received_at: sent,
                cancel: cancel.clone(),
            });
            jobs.push(Job::new(
                id,
                message,
                cancel,
                permit,
                self.ctx.events.clone(),
            ));
        }
        drop(permits);
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
