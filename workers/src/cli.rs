//! The `fleet` command line: argument parsing and the commands, each a thin call into the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fleet_bus::aws::SqsTransport;
use fleet_bus::{Topology, Transport, provision};
use indicatif::{ProgressBar, ProgressStyle};

use crate::demo::{self, DemoOptions};
use crate::telemetry::{self, LogFormat};
use crate::{dlq, send, stats};
use fleet_bus::producer::BatchProducer;
use fleet_schemas::MAX_BODY_BYTES;

/// Fleet: SQS/SNS workers that never lose a message.
#[derive(Parser)]
#[command(
    name = "fleet",
    version,
    about = "Fleet: SQS/SNS workers that never lose a message"
)]
pub struct Cli {
    /// Log line format (logs go to stderr; FLEET_LOG sets levels, e.g. FLEET_LOG=info).
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
    /// of a topology on AWS (or wherever AWS_ENDPOINT_URL points). Idempotent: a second run
    /// changes nothing and says so.
    Provision {
        /// The topology file.
        #[arg(long, default_value = "deploy/topology.toml")]
        topology: PathBuf,
    },
    /// Send events to a queue: one from --event, or many from an NDJSON file with a progress bar.
    /// Every event is validated as a consumer will decode it before anything is sent.
    Send {
        /// The queue.
        #[arg(long)]
        queue: String,
        #[command(flatten)]
        input: EventInput,
    },
    /// Publish events to a topic: one from --event, or many from an NDJSON file with a progress
    /// bar. Every event is validated as a consumer will decode it before anything is sent.
    Publish {
        /// The topic.
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        input: EventInput,
    },
    /// Inspect or redrive a dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Depth, in-flight, delayed and oldest-message age of every queue of a topology.
    Stats {
        /// The topology file.
        #[arg(long, default_value = "deploy/topology.toml")]
        topology: PathBuf,
        /// Skip CloudWatch (the oldest-message age then shows n/a).
        #[arg(long)]
        no_cloudwatch: bool,
    },
}

#[derive(clap::Args)]
struct EventInput {
    /// One event as JSON, e.g. '{"type": "order.paid", "payload": {...}}'.
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    event: Option<String>,
    /// An NDJSON file with one event per line (`-` reads standard input). A line may be a complete
    /// envelope; id, occurred_at, version and producer are filled in when missing, everything
    /// else is sent as written (fields consumers do not know yet, an older version).
    #[arg(long)]
    file: Option<PathBuf>,
    /// The envelope's `producer` where a line does not set it.
    #[arg(long, default_value = "fleet-cli")]
    producer: String,
    /// FIFO destinations: the message group of every message (deduplicated by envelope id).
    #[arg(long)]
    group: Option<String>,
    /// Send the valid lines even when some are invalid (by default nothing is sent then). The
    /// exit status is 0 only when every line was sent: 1 when a line was skipped or not sent.
    #[arg(long)]
    skip_invalid: bool,
}

#[derive(clap::Args)]
struct DlqTarget {
    /// The source queue; its redrive policy names the dead-letter queue.
    #[arg(long)]
    queue: String,
    /// The dead-letter queue, when the source queue's redrive policy does not name it.
    #[arg(long)]
    dlq: Option<String>,
}

#[derive(Subcommand)]
enum DlqCommand {
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

/// Parses the command line and runs the command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "error"
    } else {
        "warn"
    };
    telemetry::init(cli.log_format, default_level);
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleet: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

async fn run(command: Command) -> CliResult {
    match command {
        Command::Demo {
            events,
            flaky_every,
        } => {
            let summary = demo::run(DemoOptions {
                events,
                flaky_every,
                ..DemoOptions::default()
            })
            .await?;
            println!("{summary}");
            Ok(if summary.lost() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Provision { topology } => {
            let topology = Topology::from_file(&topology)?;
            let report = provision(&aws().await.0, &topology).await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            topology,
            no_cloudwatch,
        } => {
            let topology = Topology::from_file(&topology)?;
            let (transport, config) = aws().await;
            let cloudwatch = (!no_cloudwatch).then(|| aws_sdk_cloudwatch::Client::new(&config));
            print!(
                "{}",
                stats::table(&stats::collect(&transport, &topology, cloudwatch.as_ref()).await?)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command } => run_dlq(command).await,
        Command::Send { queue, input } => {
            let (transport, _) = aws().await;
            let handle = transport.queue(&queue).await?;
            run_send(
                BatchProducer::to_queue(&queue, handle.sender()),
                &queue,
                input,
            )
            .await
        }
        Command::Publish { topic, input } => {
            let (transport, _) = aws().await;
            let publisher = transport.topic(&topic).await?;
            run_send(BatchProducer::to_topic(&topic, publisher), &topic, input).await
        }
    }
}

async fn run_send(destination: BatchProducer, name: &str, input: EventInput) -> CliResult {
    let bytes = match (&input.event, &input.file) {
        (Some(event), _) => event.clone().into_bytes(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
            buf
        }
        (None, Some(path)) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        (None, None) => return Err("give --event or --file".into()),
    };
    let destination = destination.max_message_bytes(MAX_BODY_BYTES);
    let prepared = if input.event.is_some() {
        // One event, newlines and all.
        send::prepare(
            [(1, bytes.as_slice())],
            &input.producer,
            destination.message_limit(),
        )
    } else {
        send::prepare(
            send::lines_of(&bytes),
            &input.producer,
            destination.message_limit(),
        )
    };
    let send::Prepared {
        mut messages,
        lines,
        bad,
    } = prepared;
    for b in &bad {
        eprintln!("{b}");
    }
    if !bad.is_empty() && !input.skip_invalid {
        eprintln!(
            "{} invalid line(s): nothing sent (--skip-invalid sends the valid ones)",
            bad.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(group) = &input.group {
        send::into_group(&mut messages, group);
    }
    let total = messages.len();
    let bar = progress_bar(total as u64, "sending");
    let report = destination.send_all(messages, |n| bar.inc(n as u64)).await;
    bar.finish_and_clear();
    for (i, e) in &report.failed {
        eprintln!("line {} not sent: {e}", lines[*i]);
    }
    let skipped = if bad.is_empty() {
        String::new()
    } else {
        format!(", skipped {} invalid line(s)", bad.len())
    };
    println!(
        "sent {} of {total} event(s) to {name}{skipped}",
        report.sent.len()
    );
    Ok(if report.failed.is_empty() && bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn aws() -> (SqsTransport, aws_config::SdkConfig) {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    (SqsTransport::new(&config), config)
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

async fn run_dlq(command: DlqCommand) -> CliResult {
    let (transport, _) = aws().await;
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
                    Err(e) => eprintln!(
                        "StartMessageMoveTask is not available ({}); moving by receive, send and delete",
                        e.code().unwrap_or("error")
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
                eprintln!("not moved: {id}: {why}");
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
