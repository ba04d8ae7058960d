//! `fleet run`: the process operators deploy. It runs the chosen workers (or every enabled one),
//! each with its own queue, pollers and limits, so one busy queue never starves another.
//!
//! Lifecycle:
//! 1. the configuration is read and checked (`config`);
//! 2. the clients are built once (`backends`);
//! 3. every queue, dead-letter queue, topic and the table is checked (`preflight`): a missing
//!    one, or a permission the role lacks, stops the process before anything is received;
//!    a transient error (no connection, a timeout, throttling, a 5xx) is tried again, steps 3
//!    and 4 together, for up to [`START_RETRY_LIMIT`];
//! 4. the workers' consumers start;
//! 5. the first SIGTERM or SIGINT drains every worker at once within `shutdown_timeout`; a
//!    second stops at once (the messages in flight come back after their visibility timeout).
//!
//! The exit code says how it ended: 0 drained in time, 2 the drain did not finish cleanly
//! (deadline passed, a settlement given up during the drain, an engine failure: those messages come back after
//! their visibility timeout), 3 stopped hard by a
//! second signal, 1 failed (at startup: nothing was consumed).
//!
//! Under systemd (`Type=notify`) the process says `READY=1` after step 4, feeds the watchdog
//! while its loops turn and says `STOPPING=1` at step 5; inside an ECS task it holds scale-in
//! protection while messages are in flight (see `lifecycle`).
//!
//! With `[observability] listen` set, `/metrics`, `/healthz` and `/readyz` are served from
//! before step 3 (starting: alive, not ready) to the end of the drain (not ready from the first
//! signal on), and the queue gauges are read every `queue_stats_interval` once the workers run.

pub mod backends;
pub mod config;
pub mod http_client;
pub mod lifecycle;
pub mod preflight;
pub mod protection;
pub mod systemd;
pub mod workers;

use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fleet_bus::consumer::{ConsumerHandle, ConsumerStatus};
use fleet_bus::{BusError, Consumer, ShutdownReport};
use futures::future::join_all;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::observe::{Observability, Probes, QueueStatsConfig, StatusSource, Watched};
use lifecycle::Lifecycle;

pub use backends::{AwsClients, Backends, Stores};
pub use config::{Effective, FleetConfig, TransportKind, WorkerKind};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every worker drained within the deadline.
    Drained,
    /// The deadline passed with messages unsettled, a settlement was given up during the drain, or an engine
    /// failed; those messages reappear after their visibility timeout.
    DeadlinePassed,
    /// A second signal stopped the process at once.
    StoppedHard,
}

impl Ending {
    /// The process's exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Ending::Drained => ExitCode::SUCCESS,
            Ending::DeadlinePassed => ExitCode::from(2),
            Ending::StoppedHard => ExitCode::from(3),
        }
    }
}

/// The running workers of one process.
pub struct Fleet {
    running: Arc<Running>,
}

/// The workers' consumers, shared with the health endpoints until the drain takes them.
#[derive(Default)]
struct Running(Mutex<Vec<RunningWorker>>);

struct RunningWorker {
    kind: WorkerKind,
    /// The consumer's handler name: the `worker` label of its metrics.
    name: String,
    handle: ConsumerHandle,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RunningWorker>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StatusSource for Running {
    fn statuses(&self) -> Vec<(String, ConsumerStatus)> {
        self.lock()
            .iter()
            .map(|w| (w.name.clone(), w.handle.status()))
            .collect()
    }
}

/// One worker's report after a drain.
pub struct WorkerReport {
    /// The worker.
    pub worker: WorkerKind,
    /// How its messages were settled, or why its engine failed.
    pub report: Result<ShutdownReport, BusError>,
}

impl Fleet {
    /// Starts the chosen workers' consumers on `backends`. Call [`preflight`] first: a worker
    /// that fails to start drains the ones already started (their handlers finish, what they
    /// hold is settled or released) before the error is returned.
    ///
    /// # Errors
    /// When a handler cannot be built or a consumer cannot start.
    pub async fn start(
        backends: &Backends,
        config: &FleetConfig,
        chosen: &[WorkerKind],
    ) -> Result<Self, BusError> {
        let fleet = Self {
            running: Arc::new(Running::default()),
        };
        match fleet.start_each(backends, config, chosen).await {
            Ok(()) => Ok(fleet),
            Err(e) => {
                let reports = fleet.drain().await;
                if !reports.is_empty() {
                    tracing::warn!(error = %fleet_bus::chain_text(&e), "a worker failed to start; the ones started were drained:\n{}", Summary(reports));
                }
                Err(e)
            }
        }
    }

    async fn start_each(
        &self,
        backends: &Backends,
        config: &FleetConfig,
        chosen: &[WorkerKind],
    ) -> Result<(), BusError> {
        let running = &self.running;
        for worker in chosen {
            let parts = workers::worker_for(*worker, backends, config).await?;
            let mut consumer = Consumer::new(backends.transport.clone(), config.queue_of(*worker))
                .config(config.consumer_of(*worker))
                .handler(parts.handler);
            if let Some(gate) = parts.gate {
                consumer = consumer.pause_gate(gate);
            }
            if let Some(redact) = parts.redact {
                consumer = consumer.redact(redact);
            }
            let handle = consumer.start().await?;
            tracing::info!(worker = %worker, queue = config.queue_of(*worker), "worker started");
            running.lock().push(RunningWorker {
                kind: *worker,
                name: config.consumer_of(*worker).handler_name,
                handle,
            });
        }
        Ok(())
    }

    /// Each worker's consumer status (for health checks).
    pub fn statuses(&self) -> Vec<(WorkerKind, ConsumerStatus)> {
        self.running
            .lock()
            .iter()
            .map(|w| (w.kind, w.handle.status()))
            .collect()
    }

    /// The statuses for the health endpoints, by the workers' metric names; empty once the
    /// drain has begun.
    pub fn status_source(&self) -> Arc<dyn StatusSource> {
        self.running.clone()
    }

    /// Each worker's queue and dead-letter queue, for the queue gauges.
    pub fn watched(&self) -> Vec<Watched> {
        self.running
            .lock()
            .iter()
            .map(|w| {
                let status = w.handle.status();
                Watched {
                    worker: w.name.clone(),
                    queue: status.queue,
                    dead_letter_queue: status.dead_letter_queue,
                }
            })
            .collect()
    }

    /// Drains every worker at once, each within its `shutdown_timeout`.
    pub async fn drain(self) -> Vec<WorkerReport> {
        let running = std::mem::take(&mut *self.running.lock());
        join_all(running.into_iter().map(|w| async move {
            WorkerReport {
                worker: w.kind,
                report: w.handle.shutdown().await,
            }
        }))
        .await
    }
}

/// Checks what the chosen workers need, on either transport.
///
/// # Errors
/// The first missing or refused resource, with its fix.
pub async fn preflight(
    backends: &Backends,
    config: &FleetConfig,
    chosen: &[WorkerKind],
) -> Result<(), preflight::Missing> {
    preflight::check_bus(&*backends.transport, config, chosen).await?;
    if let Stores::Dynamo { client } = &backends.stores {
        let mut tables: Vec<&str> = chosen.iter().map(|w| config.table_of(*w)).collect();
        tables.dedup();
        for table in tables {
            preflight::check_table(client, table).await?;
        }
    }
    Ok(())
}

/// How long `fleet run` keeps trying to start while AWS answers with transient errors (no
/// connection, a timeout, throttling, a 5xx) before it gives up and exits: a network blip at boot
/// costs a few seconds, not a crash loop. A missing resource or a refused permission is never
/// retried.
pub const START_RETRY_LIMIT: Duration = Duration::from_secs(60);

/// The preflight and the start, tried again after a transient error until
/// [`START_RETRY_LIMIT`]; `None` when a signal came meanwhile.
async fn start_retrying(
    backends: &Backends,
    config: &FleetConfig,
    chosen: &[WorkerKind],
    signals: &mut Signals,
) -> Result<Option<Fleet>, Box<dyn std::error::Error + Send + Sync>> {
    let began = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        let attempt: Result<Fleet, Box<dyn std::error::Error + Send + Sync>> = async {
            preflight(backends, config, chosen).await?;
            Ok(Fleet::start(backends, config, chosen).await?)
        }
        .await;
        match attempt {
            Ok(fleet) => return Ok(Some(fleet)),
            Err(e) if is_transient(&*e) && began.elapsed() + pause < START_RETRY_LIMIT => {
                tracing::warn!(
                    error = %fleet_bus::chain_text(&*e),
                    retry_in_ms = pause.as_millis() as u64,
                    "starting failed on a transient error; trying again"
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    signal = signals.next() => {
                        tracing::warn!(signal, "stopped while starting");
                        return Ok(None);
                    }
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a start failed on something that may pass: a retryable AWS error, bare or behind a
/// preflight's explanation.
fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    let bus = e
        .downcast_ref::<BusError>()
        .or_else(|| e.downcast_ref::<preflight::Missing>()?.source.as_ref());
    bus.is_some_and(BusError::is_retryable)
}

/// SIGTERM and SIGINT, as one stream.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Starts listening (before the workers start, so no signal is missed).
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn listen() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT: its name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs until a signal, drains, and says how it ended; the reports go to stdout.
///
/// # Errors
/// Before anything is consumed: the configuration, a backend, a missing resource.
pub async fn serve(
    backends: &Backends,
    config: &FleetConfig,
    chosen: &[WorkerKind],
) -> Result<Ending, Box<dyn std::error::Error + Send + Sync>> {
    let mut signals = Signals::listen()?;
    // Before the preflight, so a probe sees a starting process (alive, not ready) at once.
    let mut observability = match config.observability.listen {
        Some(address) => {
            let probes = Probes::new(config.observability.unready_after);
            Some(Observability::start(address, probes).await?)
        }
        None => None,
    };
    let mut lifecycle = Lifecycle::default();
    lifecycle.starting();
    let Some(fleet) = start_retrying(backends, config, chosen, &mut signals).await? else {
        println!("stopped while starting: nothing was received");
        return Ok(Ending::Drained);
    };
    if let Some(o) = &mut observability {
        o.probes.running(fleet.status_source());
        let stats = QueueStatsConfig {
            interval: config.observability.queue_stats_interval,
            oldest_message_target: config.observability.oldest_message_target,
        };
        o.watch_queues(backends.transport.clone(), fleet.watched(), stats);
    }
    let names: Vec<&str> = chosen.iter().map(|w| w.as_str()).collect();
    lifecycle.running(config, &fleet, &names, backends.calls.issued());
    tracing::info!(workers = ?names, "fleet running; SIGTERM or SIGINT drains, a second stops at once");
    let first = signals.next().await;
    if let Some(o) = &observability {
        // Unready before the drain begins, so the load balancer stops routing here first.
        o.probes.draining();
    }
    lifecycle.draining(first, config.shutdown_timeout);
    tracing::info!(
        signal = first,
        deadline_ms = config.shutdown_timeout.as_millis() as u64,
        "draining; a second signal stops at once"
    );
    let drain = fleet.drain();
    tokio::select! {
        reports = drain => {
            let summary = Summary(reports);
            println!("{summary}");
            let calls = backends.calls.to_string();
            if !calls.is_empty() {
                println!("AWS calls made by this process:\n{calls}");
            }
            let issued = backends.calls.issued();
            if !issued.is_empty() {
                // What the role must allow, as the export derives it (`deploy::iam`).
                println!("{}\n{issued}", crate::iam_actions::REPORT_TITLE);
            }
            lifecycle.drained(summary.ending()).await;
            Ok(summary.ending())
        }
        second = signals.next() => {
            tracing::warn!(signal = second, "stopping at once: messages in flight come back after their visibility timeout");
            Ok(Ending::StoppedHard)
        }
    }
}

/// The workers' reports, one line each.
pub struct Summary(pub Vec<WorkerReport>);

impl Summary {
    /// Drained when every engine stopped cleanly and the drain settled every message it held:
    /// none abandoned at the deadline, no settlement given up during the drain (a message left
    /// invisible until its visibility timeout), and the counts balance. A settlement given up
    /// before the shutdown (counted in the report and the metrics when it happened) is not the
    /// drain's: its message was out of the process's hands already.
    pub fn ending(&self) -> Ending {
        let clean = self.0.iter().all(|r| {
            matches!(&r.report, Ok(rep)
                if rep.abandoned == 0
                    && rep.settle_failed_in_drain == 0
                    && rep.received == rep.settled())
        });
        if clean {
            Ending::Drained
        } else {
            Ending::DeadlinePassed
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.0 {
            match &r.report {
                Ok(rep) => writeln!(f, "{:<10} {rep}", r.worker.as_str())?,
                Err(e) => writeln!(
                    f,
                    "{:<10} failed: {}",
                    r.worker.as_str(),
                    fleet_bus::chain_text(e)
                )?,
            }
        }
        match self.ending() {
            Ending::Drained => write!(f, "drained in time"),
            _ => write!(
                f,
                "the drain did not finish cleanly (the deadline passed, a settlement was given up during the drain, or an engine failed): unsettled messages come back after their visibility timeout"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(report: ShutdownReport) -> Summary {
        Summary(vec![WorkerReport {
            worker: WorkerKind::Orders,
            report: Ok(report),
        }])
    }

    #[test]
    fn a_settlement_given_up_before_the_drain_does_not_fail_the_drain() {
        // A dead-letter send refused long before the SIGTERM: its message comes back after its
        // visibility timeout whatever the drain does, so the drain itself left nothing undone.
        let report = ShutdownReport {
            received: 5,
            acked: 4,
            settle_failed: 1,
            ..ShutdownReport::default()
        };
        assert_eq!(summary(report).ending(), Ending::Drained);
    }

    #[test]
    fn a_settlement_given_up_during_the_drain_fails_the_drain() {
        let report = ShutdownReport {
            received: 5,
            acked: 4,
            settle_failed: 1,
            settle_failed_in_drain: 1,
            ..ShutdownReport::default()
        };
        assert_eq!(summary(report).ending(), Ending::DeadlinePassed);
    }

    #[test]
    fn an_abandoned_message_or_an_unbalanced_count_fails_the_drain() {
        let abandoned = ShutdownReport {
            received: 5,
            acked: 4,
            abandoned: 1,
            ..ShutdownReport::default()
        };
        assert_eq!(summary(abandoned).ending(), Ending::DeadlinePassed);
        let unbalanced = ShutdownReport {
            received: 5,
            acked: 4,
            ..ShutdownReport::default()
        };
        assert_eq!(summary(unbalanced).ending(), Ending::DeadlinePassed);
        let clean = ShutdownReport {
            received: 5,
            acked: 5,
            ..ShutdownReport::default()
        };
        assert_eq!(summary(clean).ending(), Ending::Drained);
    }
}
