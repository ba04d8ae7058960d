//! The adapter: one invocation's SQS records through a Fleet handler, each ending in exactly one
//! outcome, as the engine settles them (see `fleet_bus::consumer`):
//!
//! - success: the mapping deletes the record;
//! - a transient failure before the last attempt: a batch item failure, so the mapping hands it
//!   back and the queue's visibility timeout is its backoff;
//! - a permanent failure, or a transient one at the last attempt: sent to the dead-letter queue
//!   here, with the reason attribute the engine writes, and reported as a success (the mapping
//!   deletes it). The queue's redrive would move it with no reason.
//!
//! On a FIFO queue a group's messages run in order, one at a time, groups in parallel; at a
//! group's first failure the rest of that group is held back (reported as failures, so they
//! come back in order), as AWS asks of a FIFO partial batch response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use fleet_bus::consumer::{ConsumerConfig, Handler, LeaseView, Redactor};
use fleet_bus::topology::is_fifo_name;
use fleet_bus::{Delivery, Message, Transport};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::LambdaError;
use crate::outcome::{BatchOutcome, RecordOutcome};
use crate::record::message_of;
use crate::run::{Ran, run_batch, run_one};
use crate::settle::Settler;

/// The longest part of an invocation kept for settling (dead-letter sends) after handlers must
/// stop; less when the invocation is short (a fifth of it), as the engine keeps of a lease.
const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// Runs a Fleet handler on the records of SQS events; built once per execution environment.
#[derive(Clone)]
pub struct SqsAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    handler: Handler,
    queue: Arc<str>,
    fifo: bool,
    max_attempts: u32,
    concurrency: usize,
    handler_timeout: Duration,
    settler: Settler,
}

impl SqsAdapter {
    /// An adapter for `queue`'s event source mapping: resolves the queue's redrive policy
    /// (attempts and dead-letter queue, or else `config`'s `max_attempts` and
    /// `dead_letter_queue`, as the engine does) once, for every invocation after.
    ///
    /// # Errors
    /// The queue or its dead-letter queue cannot be resolved, or it has neither a redrive
    /// policy nor a configured dead-letter queue.
    pub async fn start(
        transport: &dyn Transport,
        queue: &str,
        handler: impl Into<Handler>,
        config: &ConsumerConfig,
    ) -> Result<Self, LambdaError> {
        let description = transport.queue(queue).await?.admin().describe().await?;
        let redrive = description.redrive.as_ref();
        let dead_letter = redrive
            .map(|r| r.dead_letter_queue_name().to_owned())
            .or_else(|| config.dead_letter_queue.clone())
            .ok_or_else(|| {
                LambdaError::Config(format!(
                    "queue {queue} has no redrive policy and no dead_letter_queue is configured; Fleet never drops a failed message, so it needs one"
                ))
            })?;
        let dead_letter = transport.queue(&dead_letter).await?;
        let max_attempts =
            redrive.map_or(config.attempts_without_redrive(), |r| r.max_receive_count);
        tracing::info!(queue, max_attempts, dead_letter = dead_letter.name(), fifo = description.fifo,
            handler = %config.handler_name, "lambda adapter ready");
        Ok(Self {
            inner: Arc::new(Inner {
                handler: handler.into(),
                queue: queue.into(),
                fifo: description.fifo,
                max_attempts,
                concurrency: config.concurrency_limit(),
                handler_timeout: config.handler_timeout,
                settler: Settler {
                    queue: queue.to_owned(),
                    handler_name: config.handler_name.clone(),
                    max_attempts,
                    dead_letter: dead_letter.sender(),
                    dead_letter_fifo: is_fifo_name(dead_letter.name()),
                    redactor: None,
                },
            }),
        })
    }

    /// Error texts pass through `redact` before they are logged or dead-lettered.
    #[must_use]
    pub fn redactor(mut self, redact: Option<Redactor>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.settler.redactor = redact;
        }
        self
    }

    /// The queue whose records it handles.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// The attempts a message gets (the redrive policy's `maxReceiveCount`).
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// Runs the handler on every record of `event`; handlers must stop before `deadline` (the
    /// invocation's), less a margin kept for dead-letter sends.
    ///
    /// # Errors
    /// `Record` when a record is not an SQS message (the whole event then fails).
    pub async fn handle(
        &self,
        event: SqsEvent,
        deadline: SystemTime,
    ) -> Result<BatchOutcome, LambdaError> {
        let messages = event
            .records
            .iter()
            .map(message_of)
            .collect::<Result<Vec<_>, _>>()?;
        let time_left_ms = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_millis() as u64;
        let clock = Clock::until(deadline, self.inner.handler_timeout);
        let guard = clock.cancel.clone().drop_guard();
        let outcomes = match &self.inner.handler {
            Handler::PerMessage(_) if self.inner.fifo => self.per_group(&messages, &clock).await,
            Handler::PerMessage(_) => {
                futures::stream::iter(messages.iter().map(|m| self.one(m, &clock)))
                    .buffered(self.inner.concurrency)
                    .collect()
                    .await
            }
            Handler::Batch(_) => self.batch(&messages, &clock).await,
        };
        drop(guard);
        let outcome = BatchOutcome {
            records: messages.into_iter().map(|m| m.id).zip(outcomes).collect(),
        };
        tracing::info!(queue = %self.inner.queue, %outcome, time_left_ms, "invocation handled");
        Ok(outcome)
    }

    async fn one(&self, message: &Message, clock: &Clock) -> RecordOutcome {
        let ran = match &self.inner.handler {
            Handler::PerMessage(h) => {
                run_one(
                    h.clone(),
                    self.delivery(message, clock),
                    clock.handlers_until,
                )
                .await
            }
            Handler::Batch(_) => {
                Ran::transient("bad_handler", "a batch handler run per message".to_owned())
            }
        };
        self.inner.settler.settle(message, ran).await
    }

    /// FIFO, per message: groups in parallel, each in order, held back at its first failure.
    async fn per_group(&self, messages: &[Message], clock: &Clock) -> Vec<RecordOutcome> {
        let groups = groups_of(messages);
        let runs = groups.iter().map(|indexes| async move {
            let mut out = Vec::with_capacity(indexes.len());
            for &i in indexes {
                let failed = out.last().is_some_and(RecordOutcome::is_failure);
                out.push(if failed {
                    RecordOutcome::HeldBack
                } else {
                    self.one(&messages[i], clock).await
                });
            }
            out
        });
        let ran: Vec<Vec<RecordOutcome>> = futures::stream::iter(runs)
            .buffered(self.inner.concurrency)
            .collect()
            .await;
        let mut outcomes = vec![RecordOutcome::HeldBack; messages.len()];
        for (indexes, group) in groups.iter().zip(ran) {
            for (&i, o) in indexes.iter().zip(group) {
                outcomes[i] = o;
            }
        }
        outcomes
    }

    /// A batch handler gets every record at once; its outcomes are settled one by one (on FIFO,
    /// in group order, holding back what follows a group's first failure).
    async fn batch(&self, messages: &[Message], clock: &Clock) -> Vec<RecordOutcome> {
        let Handler::Batch(h) = &self.inner.handler else {
            return Vec::new();
        };
        let deliveries = messages.iter().map(|m| self.delivery(m, clock)).collect();
        let ran = run_batch(h.clone(), deliveries, clock.handlers_until).await;
        let settler = &self.inner.settler;
        if !self.inner.fifo {
            let settles = messages.iter().zip(ran).map(|(m, r)| settler.settle(m, r));
            return futures::future::join_all(settles).await;
        }
        let mut ran: Vec<Option<Ran>> = ran.into_iter().map(Some).collect();
        let mut outcomes = vec![RecordOutcome::HeldBack; messages.len()];
        for indexes in groups_of(messages) {
            for i in indexes {
                let Some(r) = ran[i].take() else { break };
                outcomes[i] = settler.settle(&messages[i], r).await;
                if outcomes[i].is_failure() {
                    break;
                }
            }
        }
        outcomes
    }

    fn delivery(&self, message: &Message, clock: &Clock) -> Delivery {
        Delivery {
            message: Arc::new(message.clone()),
            attempt: message.system.receive_count,
            max_attempts: self.inner.max_attempts,
            queue: self.inner.queue.clone(),
            cancel: clock.cancel.child_token(),
            // The message is the handler's until the function must stop: an idempotency
            // record's in-progress lease ends there too.
            lease: LeaseView::fixed(clock.handlers_until),
        }
    }
}

/// An invocation's time: handlers stop at `handlers_until` (their `cancel` fires then).
struct Clock {
    handlers_until: Instant,
    cancel: CancellationToken,
}

impl Clock {
    fn until(deadline: SystemTime, handler_timeout: Duration) -> Self {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let margin = SETTLE_MARGIN.min(left / 5);
        let handlers_until = Instant::now() + (left - margin).min(handler_timeout);
        let cancel = CancellationToken::new();
        let fire = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(handlers_until) => fire.cancel(),
                () = fire.cancelled() => {}
            }
        });
        Self {
            handlers_until,
            cancel,
        }
    }
}

/// Indexes of each FIFO group's messages, in the event's order (a message without a group is a
/// group of its own).
fn groups_of(messages: &[Message]) -> Vec<Vec<usize>> {
    let mut order: Vec<Vec<usize>> = Vec::new();
    let mut by_group: HashMap<&str, usize> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        match m.system.message_group_id.as_deref() {
            Some(g) => {
                let slot = *by_group.entry(g).or_insert_with(|| {
                    order.push(Vec::new());
                    order.len() - 1
                });
                order[slot].push(i);
            }
            None => order.push(vec![i]),
        }
    }
    order
}
