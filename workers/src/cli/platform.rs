//! `fleet healthcheck` (a container's HEALTHCHECK, in an image without curl) and `fleet scaling
//! target` (the backlog per task an autoscaling policy keeps).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliResult;
use super::run::ConfigArg;
use crate::run::WorkerKind;
use crate::run::http_client;
use crate::scaling::{Durations, Target};

/// `fleet healthcheck`'s arguments.
#[derive(Args)]
pub struct HealthcheckArgs {
    /// The liveness endpoint of the `fleet run` to check.
    #[arg(long, default_value = "http://127.0.0.1:9464/healthz")]
    url: String,
    /// How long the answer may take.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// `fleet healthcheck`: exit 0 when the endpoint answers 200, 1 otherwise (with why on stderr).
pub async fn run_healthcheck(args: HealthcheckArgs) -> CliResult {
    match http_client::send("GET", &args.url, None, args.timeout).await {
        Ok(answer) if answer.status == 200 => Ok(ExitCode::SUCCESS),
        Ok(answer) => {
            eprintln!(
                "{} answered {}: {}",
                args.url,
                answer.status,
                answer.body.trim_end()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("{}: {e}", args.url);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `fleet scaling ...`.
#[derive(Subcommand)]
pub enum ScalingCommand {
    /// The backlog per task to keep for a worker: acceptable latency × concurrency × messages
    /// per handler run ÷ mean handler duration, from what its processes measured.
    Target(TargetArgs),
}

/// `fleet scaling target`'s arguments.
#[derive(Args)]
pub struct TargetArgs {
    /// How long a message may wait in the backlog (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    latency: Duration,
    /// The worker.
    #[arg(long, value_enum)]
    worker: WorkerKind,
    /// A `fleet run` process's metrics: `http://host:9464/metrics` or a file holding a scrape
    /// (repeat for every process; the durations are summed).
    #[arg(
        long = "metrics",
        value_name = "URL_OR_FILE",
        default_value = "http://127.0.0.1:9464/metrics"
    )]
    metrics: Vec<String>,
    #[command(flatten)]
    config: ConfigArg,
}

/// `fleet scaling ...`.
pub async fn run_scaling(command: ScalingCommand) -> CliResult {
    let ScalingCommand::Target(args) = command;
    let effective = args.config.load()?;
    let config = &effective.config;
    let consumer = config.consumer_of(args.worker);
    let mut durations = Durations::default();
    for source in &args.metrics {
        let text = crate::cost::scrape::fetch(source)
            .await
            .map_err(|e| format!("cannot read the metrics of {source}: {e}"))?;
        durations.add(&crate::cost::scrape::samples(&text), &consumer.handler_name);
    }
    let target = Target {
        worker: consumer.handler_name.clone(),
        latency: args.latency,
        durations,
        concurrency: consumer.concurrency_limit(),
        rate_cap: (args.worker == WorkerKind::Email).then_some(config.email.rate_per_second),
    };
    if target.backlog_per_task().is_none() {
        return Err(format!(
            "no {} samples for worker {:?} in {}: run the worker under load first (its /metrics, or a file saved from it)",
            crate::scaling::HANDLER_DURATION,
            target.worker,
            args.metrics.join(", ")
        )
        .into());
    }
    println!("{target}");
    Ok(ExitCode::SUCCESS)
}
