//! The `fleet` command: run the fleet, provision it, operate it.

use std::process::ExitCode;

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
            match demo::run(options).await {
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
            }
        }
    }
}
