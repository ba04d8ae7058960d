//! The consumer engine: polls one queue, runs a handler on every message, and settles each
//! message exactly once: deleted on success, retried after a backoff on a transient failure,
//! dead-lettered with its reason on a permanent one or on its last attempt.
//!
//! Pollers receive while the in-flight limit allows (partial batches when slots are scarce, see
//! the poller); between `min_pollers` and `pollers` of them run, more while receives come back
//! full (see the scaler); handlers run in their own tasks; one settler task owns every message's
//! visibility lease from its receive until its settlement is confirmed, and batches every
//! delete, visibility change and dead-letter send.
//!
//! **Shutdown** has one deadline, `shutdown_timeout`: polling stops at once (a receive already on
//! the wire is let finish, and what it brings is released); running handlers get until a fifth of
//! the deadline (at most 5 s) is left, then are cancelled and their messages released; pending
//! settlements are flushed; at the deadline whatever is not settled is abandoned to its
//! visibility timeout. Messages that never started are released (visibility 0), except at their
//! last receive on a queue with a redrive policy: those are dead-lettered with the reason
//! `released_at_last_receive`, because the queue would move them on the next receive with none.
//!
//! **Attempts** are the queue's receive count (plus, for FIFO, the tries made in place in this
//! process): a message handed back unprocessed (shutdown, a lost lease) has spent a receive too.

mod config;
pub mod dead_letter;
mod dispatch;
mod handle;
mod handler;
mod hooks;
mod job;
mod lease_view;
mod observe;
mod poller;
mod report;
mod scaler;
mod settler;
pub mod span;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ConsumerConfig, MIN_VISIBILITY};
pub use handle::{ConsumerHandle, ConsumerStatus};
pub use handler::{
    BatchHandler, Delivery, FailureKind, Handler, HandlerError, MessageHandler, Payload,
    batch_handler_fn, handler_fn,
};
pub use hooks::{PauseGate, Redactor};
pub use lease_view::LeaseView;
pub use report::ShutdownReport;

use crate::error::BusError;
use crate::limits::MAX_RECEIVE_MESSAGES;
use crate::message::ReceiveRequest;
use crate::topology::is_fifo_name;
use crate::transport::{QueueDescription, QueueHandle, Transport};
use dispatch::Dispatcher;
use handle::{Engine, Status};
use job::JobContext;
use observe::Observer;
use poller::Poller;
use scaler::Scaler;
use settler::{Settler, SettlerSetup};

/// Messages held until their settlement is confirmed, per slot of the in-flight limit: room for
/// settlements that wait to fill a batch, and a bound when they cannot complete. FIFO messages
/// parked behind a head that waits out its backoff get as much room.
const HELD_PER_IN_FLIGHT: usize = 10;

/// A consumer of one queue: configure it, give it a handler, run it until a token is cancelled.
///
/// ```
/// # use fleet_bus::{embedded::EmbeddedBus, QueueDecl, Transport, Declaration};
/// # use fleet_bus::consumer::{Consumer, handler_fn, Delivery};
/// # async fn example(bus: EmbeddedBus, shutdown: tokio_util::sync::CancellationToken) -> Result<(), fleet_bus::BusError> {
/// let report = Consumer::new(bus, "orders")
///     .handler(handler_fn(|d: Delivery| async move {
///         println!("{}", d.message.body);
///         Ok(())
///     }))
///     .run(shutdown)
///     .await?;
/// assert!(report.is_balanced());
/// # Ok(()) }
/// ```
pub struct Consumer {
    transport: Arc<dyn Transport>,
    queue: String,
    handler: Option<Handler>,
    config: ConsumerConfig,
    gate: Option<PauseGate>,
    redactor: Option<Redactor>,
}

impl Consumer {
    /// A consumer of `queue` on `transport`, with default settings and no handler yet.
    pub fn new(transport: impl Transport + 'static, queue: impl Into<String>) -> Self {
        Self {
            transport: Arc::new(transport),
            queue: queue.into(),
            handler: None,
            config: ConsumerConfig::default(),
            gate: None,
            redactor: None,
        }
    }

    /// Sets the handler: per message ([`handler_fn`]) or per batch ([`batch_handler_fn`]).
    #[must_use]
    pub fn handler(mut self, handler: impl Into<Handler>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// Polling stops while `gate` is closed (messages already received finish as usual), and
    /// the consumer's status reports the reason.
    #[must_use]
    pub fn pause_gate(mut self, gate: PauseGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Every handler error text passes through `redactor` before it is logged or written into a
    /// dead-letter reason.
    #[must_use]
    pub fn redact(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Replaces all settings.
    #[must_use]
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes some settings.
    #[must_use]
    pub fn configure(mut self, change: impl FnOnce(&mut ConsumerConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Runs until `shutdown` is cancelled, then shuts down gracefully and reports how every
    /// received message was settled. Dropping the future stops the engine as
    /// [`ConsumerHandle`]'s drop does.
    ///
    /// # Errors
    /// Before consuming anything, as [`Consumer::start`]; after, only if the engine itself failed.
    pub async fn run(self, shutdown: CancellationToken) -> Result<ShutdownReport, BusError> {
        let handle = self.start().await?;
        shutdown.cancelled().await;
        handle.shutdown().await
    }

    /// Checks the settings, resolves the queue and its dead-letter queue, and starts polling.
    /// The handle reports the consumer's status and shuts it down; dropping it stops the engine
    /// at once (pollers stop, handlers are cancelled, what is held is released).
    ///
    /// # Errors
    /// Invalid settings, a missing queue, or a queue with neither a redrive policy nor a
    /// configured dead-letter queue.
    pub async fn start(self) -> Result<ConsumerHandle, BusError> {
        let Some(handler) = self.handler.clone() else {
            return Err(BusError::Config(format!(
                "consumer of {} has no handler",
                self.queue
            )));
        };
        self.config.validate()?;
        let source = self.transport.queue(&self.queue).await?;
        let description = source.admin().describe().await?;
        let visibility = self
            .config
            .visibility_timeout
            .unwrap_or(description.visibility_timeout);
        if visibility < config::MIN_VISIBILITY {
            return Err(BusError::Config(format!(
                "queue {} has a visibility timeout of {visibility:?}; the consumer needs at least {:?} to hold a message while it runs (set visibility_timeout)",
                self.queue,
                config::MIN_VISIBILITY
            )));
        }
        self.warn_about(&description, visibility);
        let dead_letter = self.dead_letter_queue(&description).await?;
        let resolved = Resolved {
            source,
            description,
            dead_letter,
            visibility,
        };
        Ok(self.launch(handler, &resolved))
    }

    /// Settings that work but deserve a word.
    fn warn_about(&self, d: &QueueDescription, visibility: std::time::Duration) {
        let c = &self.config;
        if visibility < c.wait_time {
            tracing::warn!(queue = %self.queue, visibility_ms = visibility.as_millis() as u64, wait_ms = c.wait_time.as_millis() as u64,
                "the visibility timeout is shorter than the long-poll wait: leases are timed from each response, so this works, but every message needs an extension within half the visibility timeout; a visibility timeout of at least the wait (and of the usual handler time) costs fewer calls");
        }
        if let Some(r) = &d.redrive {
            let ignored: Vec<&str> = [
                c.max_attempts.is_some().then_some("max_attempts"),
                c.dead_letter_queue.is_some().then_some("dead_letter_queue"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !ignored.is_empty() {
                tracing::warn!(queue = %self.queue, ignored = ?ignored, max_receive_count = r.max_receive_count, dead_letter = r.dead_letter_queue_name(),
                    "the queue's redrive policy decides attempts and the dead-letter queue; the configured max_attempts and dead_letter_queue are ignored");
            }
        }
    }

    /// Resolves where failed messages go: the redrive policy's queue, else the configured one.
    async fn dead_letter_queue(&self, d: &QueueDescription) -> Result<QueueHandle, BusError> {
        let name = d
            .redrive
            .as_ref()
            .map(|r| r.dead_letter_queue_name().to_owned())
            .or_else(|| self.config.dead_letter_queue.clone());
        let Some(name) = name else {
            return Err(BusError::Config(format!(
                "queue {} has no redrive policy and no dead_letter_queue is configured; Fleet never drops a failed message, so it needs one",
                self.queue
            )));
        };
        self.transport.queue(&name).await
    }

    fn launch(&self, handler: Handler, r: &Resolved) -> ConsumerHandle {
        let c = &self.config;
        let obs = Arc::new(Observer::new(
            &self.queue,
            &c.handler_name,
            c.concurrency_limit(),
        ));
        let status = Arc::new(Status::new(c.pollers, c.wait_time + poller::RECEIVE_GRACE));
        let (tx, rx) = mpsc::unbounded_channel();
        let setup = SettlerSetup {
            status: status.clone(),
            queue: r.source.queue(),
            dead_letter: r.dead_letter.sender(),
            dead_letter_fifo: is_fifo_name(r.dead_letter.name()),
            obs: obs.clone(),
            flush_interval: c.flush_interval,
            retry: c.retry,
        };
        let settler = tokio::spawn(Settler::new(setup, tx.clone(), rx).run());
        let shutdown = CancellationToken::new();
        let ctx = self.job_context(r, obs, &shutdown, &tx);
        let (hard_stop, stop_now) = (CancellationToken::new(), CancellationToken::new());
        let jobs = TaskTracker::new();
        let dispatcher = Arc::new(Dispatcher {
            ctx: ctx.clone(),
            handler,
            fifo: r.description.fifo,
            groups: Arc::new(std::sync::Mutex::new(HashMap::new())),
            tracker: jobs.clone(),
            hard_stop: hard_stop.clone(),
            concurrency_limit: u32::try_from(c.concurrency_limit()).unwrap_or(u32::MAX),
        });
        let pollers = TaskTracker::new();
        let batch = MAX_RECEIVE_MESSAGES.min(c.in_flight_limit());
        let scaler = Scaler::new(c.min_pollers, c.pollers, batch, ctx.obs.clone());
        let template = Poller {
            index: 0,
            queue: r.source.queue(),
            ctx,
            dispatcher,
            in_flight: Arc::new(Semaphore::new(c.in_flight_limit())),
            held: Arc::new(Semaphore::new(c.in_flight_limit() * HELD_PER_IN_FLIGHT)),
            request: ReceiveRequest::new(batch, c.wait_time).visibility(r.visibility),
            fill_wait: c.receive_fill_wait,
            next_id: Arc::new(AtomicU64::new(1)),
            hard_stop: hard_stop.clone(),
            stop_now: stop_now.clone(),
            status: status.clone(),
            gate: self.gate.clone(),
            scaler: Arc::new(scaler),
        };
        // Every poller is spawned; those beyond `min_pollers` park until receives come back full.
        for index in 0..c.pollers {
            pollers.spawn(
                Poller {
                    index,
                    ..template.clone()
                }
                .run(),
            );
        }
        tracing::info!(queue = %self.queue, pollers = c.pollers, min_pollers = c.min_pollers, max_in_flight = c.in_flight_limit(), concurrency = c.concurrency_limit(), max_attempts = template.ctx.max_attempts, visibility_ms = r.visibility.as_millis() as u64, fifo = r.description.fifo, dead_letter = r.dead_letter.name(), "consumer started");
        let engine = Engine {
            pollers,
            jobs,
            shutdown,
            hard_stop,
            stop_now,
            events: tx,
            settler,
            shutdown_timeout: c.shutdown_timeout,
            handler_grace: c.handler_grace(),
            status: status.clone(),
            finished: false,
        };
        ConsumerHandle::new(
            engine,
            status,
            &self.queue,
            r.dead_letter.name(),
            self.gate.clone(),
        )
    }

    /// What every job of this consumer shares.
    fn job_context(
        &self,
        r: &Resolved,
        obs: Arc<Observer>,
        shutdown: &CancellationToken,
        events: &mpsc::UnboundedSender<settler::Event>,
    ) -> Arc<JobContext> {
        let c = &self.config;
        let redrive = r.description.redrive.as_ref();
        Arc::new(JobContext {
            queue: self.queue.as_str().into(),
            obs,
            max_attempts: redrive.map_or(c.attempts_without_redrive(), |p| p.max_receive_count),
            redrive: redrive.is_some(),
            handler_timeout: c.handler_timeout,
            handler_name: c.handler_name.clone(),
            retry: c.retry,
            concurrency: Arc::new(Semaphore::new(c.concurrency_limit())),
            parking: Arc::new(Semaphore::new(c.in_flight_limit() * HELD_PER_IN_FLIGHT)),
            shutdown: shutdown.clone(),
            events: events.clone(),
            redactor: self.redactor.clone(),
        })
    }
}

/// What [`Consumer::start`] resolves before anything runs.
struct Resolved {
    source: QueueHandle,
    description: QueueDescription,
    dead_letter: QueueHandle,
    /// The visibility timeout each receive asks for.
    visibility: std::time::Duration,
}
