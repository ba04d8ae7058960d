//! `fleet dlq inspect` and `fleet dlq redrive`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use fleet_bus::Transport;
use fleet_bus::aws::SqsTransport;

use super::{CliResult, aws, progress_bar};
use crate::dlq;
use crate::telemetry::{Level, say};

#[derive(clap::Args)]
pub(super) struct DlqTarget {
    /// The source queue; its redrive policy names the dead-letter queue.
    #[arg(long)]
    queue: String,
    /// The dead-letter queue, when the source queue's redrive policy does not name it.
    #[arg(long)]
    dlq: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum DlqCommand {
    /// List dead-lettered messages with the reason Fleet recorded (they stay in the queue).
    Inspect {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many messages.
        #[arg(long, default_value_t = 50)]
        max: usize,
        /// Print one JSON object per message instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered messages back to the source queue, with a progress bar. Uses SQS's
    /// StartMessageMoveTask where available, else receive, send and delete.
    Redrive {
        #[command(flatten)]
        target: DlqTarget,
        /// Move at most this many (always by receive, send and delete).
        #[arg(long)]
        max: Option<usize>,
        /// Never use StartMessageMoveTask.
        #[arg(long)]
        manual: bool,
    },
}

async fn resolve(
    transport: &SqsTransport,
    target: &DlqTarget,
) -> Result<String, fleet_bus::BusError> {
    match &target.dlq {
        Some(d) => Ok(d.clone()),
        None => dlq::dead_letter_queue_of(transport, &target.queue).await,
    }
}

/// Runs a `fleet dlq` command.
pub(super) async fn run_dlq(command: DlqCommand) -> CliResult {
    let (transport, _) = aws().await?;
    match command {
        DlqCommand::Inspect { target, max, json } => {
            let name = resolve(&transport, &target).await?;
            let letters = dlq::inspect(&transport, &name, max, Duration::from_secs(30)).await?;
            for d in &letters {
                println!(
                    "{}",
                    if json {
                        dlq::to_json(d).to_string()
                    } else {
                        dlq::to_text(d)
                    }
                );
            }
            if !json {
                println!("{} message(s) in {name}", letters.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Redrive {
            target,
            max,
            manual,
        } => {
            let name = resolve(&transport, &target).await?;
            if !manual && max.is_none() {
                match dlq::start_move_task(&transport, &name, &target.queue).await {
                    Ok(handle) => {
                        println!(
                            "started StartMessageMoveTask {handle}: SQS moves the messages of {name} back to {}",
                            target.queue
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => say(
                        Level::Warn,
                        &format!(
                            "StartMessageMoveTask is not available ({}); moving by receive, send and delete",
                            e.code().unwrap_or("error")
                        ),
                        &[],
                    ),
                }
            }
            let total = transport
                .queue(&name)
                .await?
                .admin()
                .describe()
                .await?
                .counts
                .visible;
            let bar = progress_bar(max.map_or(total, |m| total.min(m as u64)), "redriving");
            let report =
                dlq::redrive(&transport, &name, &target.queue, max, |n| bar.inc(n as u64)).await?;
            bar.finish_and_clear();
            println!(
                "moved {} message(s) from {name} to {}",
                report.moved, target.queue
            );
            if report.skipped > 0 {
                println!(
                    "left {} message(s) that Fleet dead-lettered from other queues",
                    report.skipped
                );
            }
            for (id, why) in &report.failed {
                say(Level::Error, &format!("not moved: {id}: {why}"), &[]);
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
