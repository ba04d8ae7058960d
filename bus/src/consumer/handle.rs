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

/// A receive that has waited on the wire this long was accepted by the queue: polling works.
const ACCEPTED_POLL: Duration = Duration::from_secs(1);
/// The settler turns its loop at least this often, so a stalled settler shows.
pub(crate) const SETTLER_HEARTBEAT: Duration = Duration::from_secs(5);
/// A settler that has not turned its loop for this long is stalled (two heartbeats missed).
const SETTLER_STALL: Duration = Duration::from_secs(10);
/// Beyond the longest a receive may take (its wait plus the receive grace), how long before a
/// receive still on the wire counts as stalled.
const RECEIVE_STALL_MARGIN: Duration = Duration::from_secs(5);

/// What the pollers and the settler report for health checks. Times are milliseconds after
/// `started`, plus one, so 0 means "never".
pub(crate) struct Status {
    started: Instant,
    /// The last receive that answered.
    last_receive: AtomicU64,
    receive_failures: AtomicU32,
    stopping: AtomicBool,
    /// Per poller: when its receive now on the wire was sent (0: none on the wire).
    receiving: Box<[AtomicU64]>,
    /// The longest a receive may take before the poller abandons it.
    receive_limit: Duration,
    /// The settler's last turn of its loop.
    settler_turned: AtomicU64,
    /// Messages received and not yet settled.
    in_flight: AtomicU64,
}

impl Status {
    /// The status of a consumer with `pollers` pollers whose receives take at most
    /// `receive_limit`.
    pub fn new(pollers: usize, receive_limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            last_receive: AtomicU64::new(0),
            receive_failures: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            receiving: (0..pollers).map(|_| AtomicU64::new(0)).collect(),
            receive_limit,
            settler_turned: AtomicU64::new(1),
            in_flight: AtomicU64::new(0),
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        let ms = u64::try_from(at.duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        ms.saturating_add(1)
    }

    fn since(&self, stamp: u64, now: Instant) -> Option<Duration> {
        (stamp > 0).then(|| {
            let at = self.started + Duration::from_millis(stamp - 1);
            now.saturating_duration_since(at)
        })
    }

    /// Poller `poller` sent a receive.
    pub fn receive_sent(&self, poller: usize, at: Instant) {
        if let Some(slot) = self.receiving.get(poller) {
            slot.store(self.stamp(at), Ordering::Relaxed);
        }
    }

    /// Poller `poller` has no receive on the wire any more.
    pub fn receive_done(&self, poller: usize) {
        if let Some(slot) = self.receiving.get(poller) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// A receive answered (with or without messages).
    pub fn received(&self, at: Instant) {
        self.last_receive.store(self.stamp(at), Ordering::Relaxed);
        self.receive_failures.store(0, Ordering::Relaxed);
    }

    /// A receive failed.
    pub fn receive_failed(&self) {
        self.receive_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The settler turned its loop.
    pub fn settler_turned(&self, at: Instant) {
        self.settler_turned.store(self.stamp(at), Ordering::Relaxed);
    }

    /// The settler took charge of `n` received messages.
    pub fn held(&self, n: usize) {
        self.in_flight.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The settler settled (or gave up) one message.
    pub fn released(&self) {
        // Never below zero, even if a settlement were counted twice.
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// How long the longest receive now on the wire has been waiting, if one is.
    fn longest_on_wire(&self, now: Instant) -> Option<Duration> {
        self.receiving
            .iter()
            .filter_map(|slot| self.since(slot.load(Ordering::Relaxed), now))
            .max()
    }

    /// Whether the shutdown has begun (polling stopped, handlers finishing): set before
    /// anything else the shutdown does.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Why a loop of the engine has not turned when it should have, if one has not. Nothing
    /// once shutdown has begun: the loops stop on purpose then.
    fn stalled(&self, now: Instant) -> Option<String> {
        if self.stopping.load(Ordering::Relaxed) {
            return None;
        }
        let receive_stall = self.receive_limit + RECEIVE_STALL_MARGIN;
        if let Some(on_wire) = self.longest_on_wire(now).filter(|d| *d > receive_stall) {
            return Some(format!(
                "a receive has been on the wire for {}s; it should have ended within {}s",
                on_wire.as_secs(),
                self.receive_limit.as_secs()
            ));
        }
        let settler = self
            .since(self.settler_turned.load(Ordering::Relaxed), now)
            .unwrap_or_default();
        (settler > SETTLER_STALL).then(|| {
            format!(
                "the settler has not turned its loop for {}s (it should every {}s)",
                settler.as_secs(),
                SETTLER_HEARTBEAT.as_secs()
            )
        })
    }
}

/// A consumer's state, for readiness and liveness checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// The queue it consumes (resolved before it started).
    pub queue: String,
    /// Where it dead-letters (resolved before it started).
    pub dead_letter_queue: String,
    /// Polling works: a receive has answered since it started, or one has been waiting on the
    /// wire for a second (a long poll the queue accepted; a refused receive answers at once).
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
    /// Why one of the consumer's loops has not turned when it should have, if one has not: a
    /// receive on the wire longer than its long-poll wait plus the receive grace plus 5 s, or
    /// the settler not having turned its loop for 10 s. The consumer is not alive. Waiting for
    /// free handler slots (all handlers busy) or behind a closed pause gate is not a stall;
    /// nothing is stalled once shutdown has begun.
    pub stalled: Option<String>,
    /// Messages received and not yet settled (acknowledged, retried, released or
    /// dead-lettered): what a platform's scale-in must not interrupt.
    pub in_flight: u64,
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
        let now = Instant::now();
        let last = self.status.last_receive.load(Ordering::Relaxed);
        let since_last_receive = self.status.since(last, now);
        ConsumerStatus {
            queue: self.queue.clone(),
            dead_letter_queue: self.dead_letter_queue.clone(),
            // A long poll that has waited a second was accepted by the queue (a refused receive
            // answers at once), so an empty queue does not hold readiness for a whole wait.
            polling: last > 0
                || self
                    .status
                    .longest_on_wire(now)
                    .is_some_and(|d| d >= ACCEPTED_POLL && d <= self.status.receive_limit),
            since_last_receive,
            receive_failures: self.status.receive_failures.load(Ordering::Relaxed),
            stopping: self.status.stopping.load(Ordering::Relaxed),
            paused: self.gate.as_ref().and_then(super::PauseGate::paused),
            stalled: self.status.stalled(now),
            in_flight: self.status.in_flight.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn a_receive_on_the_wire_past_its_limit_and_five_seconds_is_a_stall() {
        let status = Status::new(2, SECS(50));
        status.settler_turned(Instant::now());
        status.receive_sent(1, Instant::now());
        tokio::time::sleep(SECS(55)).await;
        status.settler_turned(Instant::now());
        assert_eq!(status.stalled(Instant::now()), None, "at the limit");
        tokio::time::sleep(SECS(1)).await;
        status.settler_turned(Instant::now());
        let why = status.stalled(Instant::now()).expect("stalled");
        assert!(why.contains("56s") && why.contains("50s"), "{why}");
        status.receive_done(1);
        assert_eq!(status.stalled(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_settler_that_has_not_turned_for_ten_seconds_is_a_stall_until_shutdown() {
        let status = Status::new(1, SECS(50));
        tokio::time::sleep(SECS(10)).await;
        assert_eq!(status.stalled(Instant::now()), None);
        tokio::time::sleep(SECS(1)).await;
        let why = status.stalled(Instant::now()).expect("stalled");
        assert!(why.contains("settler"), "{why}");
        status.stopping.store(true, Ordering::Relaxed);
        assert_eq!(status.stalled(Instant::now()), None, "stopping on purpose");
    }
}
