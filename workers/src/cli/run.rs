//! `fleet run` and `fleet config check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use fleet_bus::Topology;

use super::{BoxError, CliResult};
use crate::run::config::DEFAULT_CONFIG;
use crate::run::{Backends, Effective, TransportKind, WorkerKind, serve};
use crate::telemetry;

/// Where the configuration comes from.
#[derive(Args)]
pub struct ConfigArg {
    /// The configuration file (default: deploy/fleet.toml when it exists, else the defaults).
    /// FLEET__SECTION__KEY variables override its keys.
    #[arg(long, env = "FLEET_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    pub(super) fn load(&self) -> Result<Effective, BoxError> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        Ok(Effective::load(path.as_deref(), std::env::vars())?)
    }
}

/// `fleet config ...`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration strictly and print it as `fleet run` would use it, overrides
    /// applied and secrets redacted.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// `fleet run`'s arguments.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Run this worker (repeat for several); without it, every worker the configuration enables.
    #[arg(long = "worker", value_enum)]
    workers: Vec<WorkerKind>,
}

/// `fleet config check`.
pub fn run_config(command: ConfigCommand) -> CliResult {
    match command {
        ConfigCommand::Check { config } => {
            print!("{}", config.load()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `fleet run`.
pub async fn run_fleet(args: RunArgs) -> CliResult {
    let effective = args.config.load()?;
    let config = &effective.config;
    let chosen = config.chosen(&args.workers);
    if chosen.is_empty() {
        return Err(
            "no worker to run: enable one in the configuration or name it with --worker".into(),
        );
    }
    telemetry::export_spans(&config.observability.tracing)?;
    // Test builds only (see fleet_bus::failpoint); an error in any other build that has it set.
    let failpoints = fleet_bus::failpoint::configure_from_env()?;
    if !failpoints.is_empty() {
        tracing::warn!(?failpoints, "failpoints configured from FAILPOINTS");
    }
    let backends = match config.transport {
        TransportKind::Aws => Backends::aws(&super::aws().await?.1),
        TransportKind::Embedded => Backends::embedded(&topology(&config.topology)?).await?.0,
    };
    let ending = serve(&backends, config, &chosen).await;
    // The batch processor's thread sends what is left; it blocks, so not on a runtime thread.
    let flushed = tokio::task::spawn_blocking(|| telemetry::shutdown_export(SPAN_FLUSH_LIMIT));
    let _ = flushed.await;
    Ok(ending?.exit_code())
}

/// How long the spans not yet exported may hold up the exit.
const SPAN_FLUSH_LIMIT: Duration = Duration::from_secs(5);

fn topology(path: &Path) -> Result<Topology, BoxError> {
    Ok(Topology::from_file(path)?)
}
