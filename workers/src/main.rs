//! The `fleet` command: run the fleet, provision it, operate it.

use std::path::PathBuf;
use std::process::ExitCode;

use fleet_bus::aws::SqsTransport;
use fleet_bus::{Topology, provision};

use clap::{Parser, Subcommand};
use fleet_workers::demo::{self, DemoOptions};
use fleet_workers::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "fleet",
    version,
    about = "Fleet: SQS/SNS workers that never lose a message"
)]
struct Cli {
    /// Log line format (logs go to stderr; FLEET_LOG sets levels).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole fleet end to end on the embedded transport (no AWS needed) and print what
    /// happened to every event.
    Demo {
        /// Events to publish.
        #[arg(long, default_value_t = 300)]
        events: usize,
        /// Every n-th event fails once and is retried (0: none).
        #[arg(long, default_value_t = 25)]
        flaky_every: usize,
    },
    /// Create or update the queues, dead-letter queues, topics, subscriptions and queue policies
    /// of a topology on AWS (or on any endpoint AWS_ENDPOINT_URL names). Idempotent: a second run
    /// changes nothing and says so.
    Provision {
        /// The topology file.
        #[arg(long, default_value = "deploy/topology.toml")]
        topology: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            events,
            flaky_every,
        } => {
            telemetry::init(cli.log_format, "error");
            let options = DemoOptions {
                events,
                flaky_every,
                ..DemoOptions::default()
            };
            return match demo::run(options).await {
                Ok(summary) => {
                    println!("{summary}");
                    if summary.lost() == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("fleet demo failed: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Provision { topology } => {
            telemetry::init(cli.log_format, "warn");
            let result = async {
                let topology = Topology::from_file(&topology)?;
                let transport = SqsTransport::from_env().await;
                provision(&transport, &topology).await
            };
            match result.await {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("fleet provision failed: {}", error_chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
