//! What an execution environment builds once, outside the handler, and reuses on every warm
//! invocation: the configuration, one SDK configuration and one client per service
//! (`fleet_workers::run::Backends`, as `fleet run` builds them), the worker's handler with its
//! stores and secrets (SSM, cached with a TTL, `fleet_workers::secrets::SsmSecrets`), and the
//! adapter with its queue's redrive policy resolved.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use fleet_workers::run::workers::worker_for;
use fleet_workers::run::{Backends, Effective, TransportKind, WorkerKind};

use crate::adapter::SqsAdapter;
use crate::error::LambdaError;

/// The variable that names the worker this function runs (`orders`, `analytics`, `email`).
pub const WORKER_VAR: &str = "FLEET_LAMBDA_WORKER";
/// The variable that names the configuration file (as for `fleet run`); without it, the
/// defaults with the `FLEET__` overrides.
pub const CONFIG_VAR: &str = "FLEET_CONFIG";

/// Environments built in this process: one per execution environment (logged with every
/// invocation, so a test can count it).
static BUILT: AtomicU64 = AtomicU64::new(0);

/// One execution environment: built at cold start, reused by every invocation.
pub struct Environment {
    worker: WorkerKind,
    backends: Backends,
    adapter: SqsAdapter,
    invocations: AtomicU64,
}

impl Environment {
    /// Reads [`WORKER_VAR`], [`CONFIG_VAR`] and the `FLEET__` overrides, loads the AWS
    /// configuration and builds everything once.
    ///
    /// # Errors
    /// A missing or unknown worker, a configuration that does not load, the embedded
    /// transport, or a queue that cannot be resolved.
    pub async fn from_env() -> Result<Self, LambdaError> {
        let worker = std::env::var(WORKER_VAR).map_err(|_| {
            LambdaError::Config(format!("set {WORKER_VAR} to orders, analytics or email"))
        })?;
        let worker = <WorkerKind as clap::ValueEnum>::from_str(&worker, true).map_err(|_| {
            LambdaError::Config(format!(
                "{WORKER_VAR}={worker}: not a worker (orders, analytics, email)"
            ))
        })?;
        let path = std::env::var_os(CONFIG_VAR).map(PathBuf::from);
        let effective = Effective::load(path.as_deref(), std::env::vars())
            .map_err(|e| LambdaError::Config(fleet_bus::chain_text(&e)))?;
        if effective.config.transport != TransportKind::Aws {
            return Err(LambdaError::Config(
                "transport must be aws on Lambda: the event source mapping reads an SQS queue"
                    .to_owned(),
            ));
        }
        let sdk = fleet_bus::aws::config_loader().load().await;
        Self::build(worker, &effective, Backends::aws(&sdk)).await
    }

    /// Builds the worker's handler and the adapter on `backends`.
    ///
    /// # Errors
    /// When the worker cannot be built or its queue cannot be resolved.
    pub async fn build(
        worker: WorkerKind,
        effective: &Effective,
        backends: Backends,
    ) -> Result<Self, LambdaError> {
        let config = &effective.config;
        let built = worker_for(worker, &backends, config).await?;
        let adapter = SqsAdapter::start(
            &*backends.transport,
            config.queue_of(worker),
            built.handler,
            &config.consumer_of(worker),
        )
        .await?
        .redactor(built.redact);
        let n = BUILT.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(worker = %worker, environments_built = n, "execution environment built");
        Ok(Self {
            worker,
            backends,
            adapter,
            invocations: AtomicU64::new(0),
        })
    }

    /// The adapter this environment runs.
    pub fn adapter(&self) -> &SqsAdapter {
        &self.adapter
    }

    /// One invocation: the records through the worker, and the partial batch response.
    ///
    /// # Errors
    /// When the event is not an SQS event (the whole batch then comes back).
    pub async fn invoke(
        &self,
        event: SqsEvent,
        deadline: SystemTime,
    ) -> Result<SqsBatchResponse, LambdaError> {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed) + 1;
        let started = std::time::Instant::now();
        let outcome = self.adapter.handle(event, deadline).await?;
        // Metrics: one EMF line on stdout, which the Lambda runtime sends to CloudWatch Logs.
        println!(
            "{}",
            crate::emf::line(
                self.worker.as_str(),
                self.adapter.queue(),
                &outcome,
                started.elapsed()
            )
        );
        // Resolving queues and topics happens at build time only: these stay flat while
        // invocations grow when the clients are reused.
        let lookups = self
            .backends
            .calls
            .calls_of("sqs", &["GetQueueUrl", "GetQueueAttributes"]);
        tracing::info!(worker = %self.worker, invocation = n, environments_built = BUILT.load(Ordering::Relaxed),
            queue_lookups = lookups, failures = outcome.failed_ids().len(), "invocation done");
        Ok(outcome.response())
    }
}

/// Serves `environment` on the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process
/// is stopped.
///
/// # Errors
/// When the Runtime API cannot be reached.
pub async fn serve(environment: Environment) -> Result<(), lambda_runtime::Error> {
    let environment = std::sync::Arc::new(environment);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let environment = environment.clone();
            async move {
                let deadline = deadline_of(event.context.deadline);
                environment
                    .invoke(event.payload, deadline)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}

/// Deadlines before this (2001-01-01, in ms since the epoch) are not wall-clock deadlines.
const EARLIEST_DEADLINE_MS: u64 = 978_307_200_000;

/// The invocation's deadline from `Lambda-Runtime-Deadline-Ms`: milliseconds since the epoch on
/// AWS. `cargo lambda watch` (1.9.2) sends the function's timeout instead (`600000`): a value
/// that cannot be a wall-clock deadline is read as the time left from now.
fn deadline_of(header_ms: u64) -> SystemTime {
    if header_ms < EARLIEST_DEADLINE_MS {
        SystemTime::now() + std::time::Duration::from_millis(header_ms)
    } else {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(header_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_deadline_is_epoch_milliseconds_or_else_the_time_left() {
        let aws = 1_796_567_751_074;
        assert_eq!(
            deadline_of(aws),
            SystemTime::UNIX_EPOCH + Duration::from_millis(aws)
        );
        let left = deadline_of(600_000)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        assert!(
            left > Duration::from_secs(599) && left <= Duration::from_secs(600),
            "{left:?}"
        );
    }
}
