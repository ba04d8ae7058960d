//! The consumer engine: polls one queue, runs a handler on every message, and settles each
//! message exactly once: deleted on success, retried after a backoff on a transient failure,
//! dead-lettered with its reason on a permanent one or on its last attempt.
//!
//! Pollers receive in batches of 10 while the in-flight limit allows; handlers run in their own
//! tasks; one settler task owns the visibility leases and batches every delete, visibility change
//! and dead-letter send. Shutdown stops polling, lets handlers finish within a deadline, releases
//! what never started and flushes every pending settlement before it returns its report.

mod config;
pub mod dead_letter;
mod dispatch;
mod handler;
mod job;
mod poller;
mod report;
mod settler;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ConsumerConfig, MIN_VISIBILITY};
pub use handler::{
    BatchHandler, Delivery, FailureKind, Handler, HandlerError, MessageHandler, Payload,
    batch_handler_fn, handler_fn,
};
pub use report::ShutdownReport;

use crate::error::BusError;
use crate::events::Scope;
use crate::limits::MAX_RECEIVE_MESSAGES;
use crate::message::ReceiveRequest;
use crate::topology::is_fifo_name;
use crate::transport::{QueueDescription, QueueHandle, Transport};
use dispatch::Dispatcher;
use job::JobContext;
use poller::Poller;
use settler::{Event, Settler, SettlerSetup};

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
/// assert_eq!(report.unaccounted(), 0);
/// # Ok(()) }
/// ```
pub struct Consumer {
    transport: Arc<dyn Transport>,
    queue: String,
    handler: Option<Handler>,
    config: ConsumerConfig,
}

impl Consumer {
    /// A consumer of `queue` on `transport`, with default settings and no handler yet.
    pub fn new(transport: impl Transport + 'static, queue: impl Into<String>) -> Self {
        Self {
            transport: Arc::new(transport),
            queue: queue.into(),
            handler: None,
            config: ConsumerConfig::default(),
        }
    }

    /// Sets the handler: per message ([`handler_fn`]) or per batch ([`batch_handler_fn`]).
    #[must_use]
    pub fn handler(mut self, handler: impl Into<Handler>) -> Self {
        self.handler = Some(handler.into());
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
    /// received message was settled.
    ///
    /// # Errors
    /// Before consuming anything: invalid settings, a missing queue, or a queue with neither a
    /// redrive policy nor a configured dead-letter queue. Once running, API errors are retried
    /// and counted, never returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<ShutdownReport, BusError> {
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
        let dead_letter = self.dead_letter_queue(&description).await?;
        let engine = self.start(
            handler,
            &source,
            &description,
            &dead_letter,
            shutdown.clone(),
        );
        engine.finish(shutdown, self.config.shutdown_timeout).await
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

    fn start(
        &self,
        handler: Handler,
        source: &QueueHandle,
        d: &QueueDescription,
        dead_letter: &QueueHandle,
        shutdown: CancellationToken,
    ) -> Engine {
        let c = &self.config;
        let scope = Scope {
            queue: self.queue.clone(),
        };
        let visibility = c.visibility_timeout.unwrap_or(d.visibility_timeout);
        let max_attempts = d
            .redrive
            .as_ref()
            .map_or(c.max_attempts, |r| r.max_receive_count);
        let (tx, rx) = mpsc::unbounded_channel();
        let setup = SettlerSetup {
            queue: source.queue(),
            dead_letter: dead_letter.sender(),
            dead_letter_fifo: is_fifo_name(dead_letter.name()),
            scope: scope.clone(),
            flush_interval: c.flush_interval,
            retry: c.retry,
        };
        let settler = tokio::spawn(Settler::new(setup, tx.clone(), rx).run());
        let concurrency_limit = u32::try_from(c.concurrency_limit()).unwrap_or(u32::MAX);
        let ctx = Arc::new(JobContext {
            queue: self.queue.as_str().into(),
            scope,
            max_attempts,
            handler_timeout: c.handler_timeout,
            handler_name: c.handler_name.clone(),
            retry: c.retry,
            concurrency: Arc::new(Semaphore::new(c.concurrency_limit())),
            shutdown,
            events: tx.clone(),
        });
        let hard_stop = CancellationToken::new();
        let jobs = TaskTracker::new();
        let dispatcher = Arc::new(Dispatcher {
            ctx: ctx.clone(),
            handler,
            fifo: d.fifo,
            groups: Arc::new(std::sync::Mutex::new(HashMap::new())),
            tracker: jobs.clone(),
            hard_stop: hard_stop.clone(),
            concurrency_limit,
        });
        let in_flight = Arc::new(Semaphore::new(c.in_flight_limit()));
        let batch = MAX_RECEIVE_MESSAGES.min(c.in_flight_limit());
        let request = ReceiveRequest::new(batch, c.wait_time).visibility(visibility);
        let pollers = TaskTracker::new();
        let next_id = Arc::new(AtomicU64::new(1));
        for _ in 0..c.pollers {
            let p = Poller {
                queue: source.queue(),
                ctx: ctx.clone(),
                dispatcher: dispatcher.clone(),
                in_flight: in_flight.clone(),
                request: request.clone(),
                next_id: next_id.clone(),
                hard_stop: hard_stop.clone(),
            };
            pollers.spawn(p.run());
        }
        tracing::info!(queue = %self.queue, pollers = c.pollers, max_in_flight = c.in_flight_limit(), max_attempts, visibility_ms = visibility.as_millis() as u64, fifo = d.fifo, dead_letter = dead_letter.name(), "consumer started");
        Engine {
            pollers,
            jobs,
            hard_stop,
            events: tx,
            settler,
        }
    }
}

/// The running parts of a consumer, for shutdown.
struct Engine {
    pollers: TaskTracker,
    jobs: TaskTracker,
    hard_stop: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
    settler: tokio::task::JoinHandle<ShutdownReport>,
}

impl Engine {
    async fn finish(
        self,
        shutdown: CancellationToken,
        grace: std::time::Duration,
    ) -> Result<ShutdownReport, BusError> {
        shutdown.cancelled().await;
        let deadline = Instant::now() + grace;
        tracing::info!("shutdown: polling stopped; waiting for running handlers");
        self.pollers.close();
        self.pollers.wait().await;
        self.jobs.close();
        if tokio::time::timeout_at(deadline, self.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutdown deadline passed; cancelling running handlers and releasing their messages"
            );
            self.hard_stop.cancel();
            self.jobs.wait().await;
        }
        let _ = self.events.send(Event::Drain);
        let report = self
            .settler
            .await
            .map_err(|e| BusError::Internal(format!("the settler task failed: {e}")))?;
        tracing::info!(%report, "consumer stopped");
        Ok(report)
    }
}
