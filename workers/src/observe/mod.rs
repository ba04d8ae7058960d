//! What `fleet run` shows operators: Prometheus metrics on `/metrics`, liveness on `/healthz`,
//! readiness on `/readyz`, all on one small HTTP server (`[observability] listen`), and the
//! queue gauges read from the queues themselves.
//!
//! - [`metrics`]: the workers' metric catalogue and the Prometheus recorder;
//! - [`health`]: the readiness and liveness rules (pure);
//! - [`probes`]: the state those rules read (the process's phase, its consumers' statuses);
//! - [`http`]: the server;
//! - [`queue_stats`]: the task behind the queue and backlog gauges.

pub mod health;
pub mod http;
pub mod metrics;
pub mod probes;
pub mod queue_stats;

use std::net::SocketAddr;
use std::sync::Arc;

use fleet_bus::Transport;
use tokio::task::JoinHandle;

pub use health::{Phase, Verdict};
pub use http::Endpoints;
pub use probes::{Probes, StatusSource};
pub use queue_stats::{QueueStatsConfig, Watched};

/// Why the observability endpoints could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// The Prometheus recorder could not be built or installed.
    #[error("cannot install the Prometheus recorder")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address} for the observability endpoints")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The running observability of a process: the HTTP server, the recorder's upkeep and, once the
/// workers run, the queue gauges. Dropping it stops them.
pub struct Observability {
    /// The bound address (the configured one, with the port chosen when it was 0).
    pub address: SocketAddr,
    /// The probes' state: tell it when the workers run and when draining starts.
    pub probes: Probes,
    tasks: Vec<JoinHandle<()>>,
}

impl Observability {
    /// Installs the recorder, binds `address` and serves the endpoints; the process is starting
    /// (alive, not ready) until [`Probes::running`].
    ///
    /// # Errors
    /// When the recorder cannot be installed or the address cannot be bound.
    pub async fn start(address: SocketAddr, probes: Probes) -> Result<Self, ObserveError> {
        let handle = metrics::install()?;
        let listener = http::bind(address).await?;
        let address = listener
            .local_addr()
            .map_err(|source| ObserveError::Bind { address, source })?;
        let endpoints = Endpoints {
            metrics: handle.clone(),
            probes: probes.clone(),
        };
        let tasks = vec![
            tokio::spawn(http::serve(listener, endpoints)),
            tokio::spawn(metrics::upkeep(handle)),
        ];
        tracing::info!(%address, "observability endpoints listening");
        Ok(Self {
            address,
            probes,
            tasks,
        })
    }

    /// Starts reading the queue gauges of `watched` through `transport`.
    pub fn watch_queues(
        &mut self,
        transport: Arc<dyn Transport>,
        watched: Vec<Watched>,
        config: QueueStatsConfig,
    ) {
        self.tasks
            .push(tokio::spawn(queue_stats::run(transport, watched, config)));
    }
}

impl Drop for Observability {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
