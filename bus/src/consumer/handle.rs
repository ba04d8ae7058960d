//! A running consumer: its status for health checks, and its shutdown, graceful by
//! [`ConsumerHandle::shutdown`] or immediate when the handle is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::report::ShutdownReport;
use super::settler::Event;
use crate::error::BusError;

/// When the handle is dropped, the engine gets this long to release what it holds.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Beyond the deadline, how long to wait for the settler's report (it stops itself at the
/// deadline; this only covers scheduling).
const REPORT_GRACE: Duration = Duration::from_secs(1);

/// What the pollers report for health checks.
pub(crate) struct Status {
    started: Instant,
    /// Milliseconds after `started` of the last receive that answered, plus one (0: none yet).
    last_receive: AtomicU64,
    receive_failures: AtomicU32,
    stopping: AtomicBool,
}

impl Status {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            last_receive: AtomicU64::new(0),
            receive_failures: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// A receive answered (with or without messages).
    pub fn received(&self, at: Instant) {
        let ms = u64::try_from(at.duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        self.last_receive
            .store(ms.saturating_add(1), Ordering::Relaxed);
        self.receive_failures.store(0, Ordering::Relaxed);
    }

    /// A receive failed.
    pub fn receive_failed(&self) {
        self.receive_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// A consumer's state, for readiness and liveness checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// The queue it consumes (resolved before it started).
    pub queue: String,
    /// Where it dead-letters (resolved before it started).
    pub dead_letter_queue: String,
    /// A receive has answered since it started: polling works.
    pub polling: bool,
    /// How long ago the last receive answered.
    pub since_last_receive: Option<Duration>,
    /// Receives that failed since the last one that answered.
    pub receive_failures: u32,
    /// Shutdown has begun.
    pub stopping: bool,
    /// Why polling is paused (its [`PauseGate`](super::PauseGate) is closed), if it is: the
    /// consumer is not ready.
    pub paused: Option<String>,
}

/// The running parts of a consumer.
pub(crate) struct Engine {
    pub pollers: TaskTracker,
    pub jobs: TaskTracker,
    /// Stop polling and starting handlers.
    pub shutdown: CancellationToken,
    /// Cancel running handlers.
    pub hard_stop: CancellationToken,
    /// Abandon receives on the wire.
    pub stop_now: CancellationToken,
    pub events: UnboundedSender<Event>,
    pub settler: JoinHandle<ShutdownReport>,
    pub shutdown_timeout: Duration,
    pub handler_grace: Duration,
    pub status: Arc<Status>,
    /// The graceful shutdown ran to its end; until then, dropping the engine kills it.
    pub finished: bool,
}

impl Engine {
    /// The graceful shutdown, within `shutdown_timeout` (see the module documentation of
    /// `consumer`). If this future is dropped before it ends, the engine is killed as if its
    /// handle had been dropped.
    async fn finish(&mut self) -> Result<ShutdownReport, BusError> {
        let start = Instant::now();
        let deadline = start + self.shutdown_timeout;
        let handlers_by = start + self.handler_grace;
        self.status.stopping.store(true, Ordering::Relaxed);
        self.shutdown.cancel();
        tracing::info!(
            deadline_ms = self.shutdown_timeout.as_millis() as u64,
            "shutdown: polling stops; running handlers may finish"
        );
        self.pollers.close();
        if tokio::time::timeout_at(handlers_by, self.pollers.wait())
            .await
            .is_err()
        {
            self.stop_now.cancel();
            self.pollers.wait().await;
        }
        self.jobs.close();
        if tokio::time::timeout_at(handlers_by, self.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown: handlers still running; cancelling them and releasing their messages"
            );
            self.hard_stop.cancel();
            // A handler stuck in blocking code may never stop: it gets half of what is left,
            // the settlements the other half.
            let stuck_by = handlers_by + deadline.saturating_duration_since(handlers_by) / 2;
            if tokio::time::timeout_at(stuck_by, self.jobs.wait())
                .await
                .is_err()
            {
                tracing::error!(
                    "shutdown: a handler ignores its cancellation; its message is abandoned to its visibility timeout"
                );
            }
        }
        self.stop_now.cancel();
        let _ = self.events.send(Event::Drain { deadline });
        let report = match tokio::time::timeout_at(deadline + REPORT_GRACE, &mut self.settler).await
        {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => return Err(BusError::Internal(format!("the settler task failed: {e}"))),
            Err(_) => {
                return Err(BusError::Internal(
                    "the settler did not stop at the shutdown deadline".to_owned(),
                ));
            }
        };
        self.finished = true;
        tracing::info!(%report, "consumer stopped");
        Ok(report)
    }
}

impl Drop for Engine {
    /// Stops everything at once unless the graceful shutdown ran to its end: pollers stop,
    /// handlers are cancelled, and the settler releases what it holds within a few seconds, on
    /// its own. The settler is told to drain only once the pollers have stopped, so no receive
    /// lands after it is gone.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.status.stopping.store(true, Ordering::Relaxed);
        self.shutdown.cancel();
        self.hard_stop.cancel();
        self.stop_now.cancel();
        self.pollers.close();
        let deadline = Instant::now() + KILL_GRACE;
        let (pollers, events) = (self.pollers.clone(), self.events.clone());
        let drain = async move {
            let _ = tokio::time::timeout_at(deadline, pollers.wait()).await;
            let _ = events.send(Event::Drain { deadline });
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(drain);
            }
            // No runtime to run on: the engine's tasks are gone with it.
            Err(_) => {
                let _ = self.events.send(Event::Drain { deadline });
            }
        }
        tracing::warn!(
            "consumer dropped before its shutdown finished: handlers cancelled, held messages released"
        );
    }
}

/// A running consumer. [`shutdown`](ConsumerHandle::shutdown) stops it gracefully and returns
/// its report; dropping the handle (or the `shutdown` future before it ends) stops it at once:
/// pollers stop, handlers are cancelled, and every held message is released (visibility 0),
/// within a few seconds, in the background.
pub struct ConsumerHandle {
    engine: Option<Engine>,
    status: Arc<Status>,
    queue: String,
    dead_letter_queue: String,
    gate: Option<super::PauseGate>,
}

impl ConsumerHandle {
    pub(crate) fn new(
        engine: Engine,
        status: Arc<Status>,
        queue: &str,
        dlq: &str,
        gate: Option<super::PauseGate>,
    ) -> Self {
        Self {
            engine: Some(engine),
            status,
            queue: queue.to_owned(),
            dead_letter_queue: dlq.to_owned(),
            gate,
        }
    }

    /// The consumer's state now.
    pub fn status(&self) -> ConsumerStatus {
        let last = self.status.last_receive.load(Ordering::Relaxed);
        let since_last_receive = (last > 0).then(|| {
            let at = self.status.started + Duration::from_millis(last - 1);
            Instant::now().saturating_duration_since(at)
        });
        ConsumerStatus {
            queue: self.queue.clone(),
            dead_letter_queue: self.dead_letter_queue.clone(),
            polling: last > 0,
            since_last_receive,
            receive_failures: self.status.receive_failures.load(Ordering::Relaxed),
            stopping: self.status.stopping.load(Ordering::Relaxed),
            paused: self.gate.as_ref().and_then(super::PauseGate::paused),
        }
    }

    /// Shuts down gracefully within the configured `shutdown_timeout` and reports how every
    /// received message was settled.
    ///
    /// # Errors
    /// `Internal` when the engine's settler task failed (a bug).
    pub async fn shutdown(mut self) -> Result<ShutdownReport, BusError> {
        match self.engine.as_mut() {
            Some(engine) => engine.finish().await,
            None => Err(BusError::Internal(
                "the consumer was already stopped".to_owned(),
            )),
        }
    }
}
