//! The `fleet` command line: argument parsing and the commands, each a thin call into the
//! library.

mod counters;
mod dlq;
mod orders;
mod platform;
mod run;
mod send;
mod templates;
mod topology;

use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_sqs::config::ProvideCredentials;
use clap::{Parser, Subcommand};
use fleet_bus::aws::SqsTransport;
use fleet_bus::producer::BatchProducer;
use fleet_bus::{Topology, Transport, provision};
use indicatif::{ProgressBar, ProgressStyle};

use crate::demo::{self, DemoOptions};
use crate::stats;
use crate::telemetry::{self, Level, LogFormat, say};
use dlq::DlqCommand;
use send::EventInput;

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
    /// Run the workers (all that the configuration enables, or those named with --worker) until
    /// SIGTERM or SIGINT, then drain. Exit code: 0 drained in time, 2 the drain deadline passed,
    /// 3 stopped hard by a second signal, 1 failed at startup (nothing consumed).
    Run(run::RunArgs),
    /// Check and print the configuration of `fleet run`.
    Config {
        #[command(subcommand)]
        command: run::ConfigCommand,
    },
    /// Run the orders and analytics workers end to end on the embedded transport (no AWS
    /// needed): publish a seeded scenario of order events (duplicates, shuffled, a few impossible
    /// ones) and check the orders, counters and dead letters against its model.
    Demo {
        /// Orders in the scenario.
        #[arg(long, default_value_t = 200)]
        orders: usize,
        /// Order events to publish, duplicates included.
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// The scenario's seed (the same seed publishes the same events in the same order).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Create or update the queues, dead-letter queues, topics, subscriptions, queue policies and
    /// DynamoDB tables of a topology on AWS (or wherever AWS_ENDPOINT_URL points). Idempotent: a second run
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
    /// The analytics counters of one name, subject or currency over a time range, as a table.
    Counters(counters::CountersArgs),
    /// Show an order, or list a customer's orders, from the workers' table.
    Orders {
        #[command(subcommand)]
        command: orders::OrdersCommand,
    },
    /// Depth, in-flight, delayed and oldest-message age of every queue of a topology.
    Stats {
        /// The topology file.
        #[arg(long, default_value = "deploy/topology.toml")]
        topology: PathBuf,
        /// Skip CloudWatch (the oldest-message age then shows n/a).
        #[arg(long)]
        no_cloudwatch: bool,
        /// Also estimate the cost per million messages from a `fleet run` process's metrics:
        /// `http://host:9464/metrics` or a file holding a scrape (repeat for every process).
        #[arg(long = "metrics", value_name = "URL_OR_FILE")]
        metrics: Vec<String>,
        /// Only the cost estimate (with --metrics): no queue table, no AWS call.
        #[arg(long, requires = "metrics")]
        cost_only: bool,
    },
    /// Export the topology (deploy/topology.toml) for another deployment tool.
    Topology {
        #[command(subcommand)]
        command: topology::TopologyCommand,
    },
    /// Check the email templates.
    Templates {
        #[command(subcommand)]
        command: templates::TemplatesCommand,
    },
    /// Check a `fleet run`'s liveness (`/healthz`): exit 0 alive, 1 not (a container
    /// HEALTHCHECK in an image without curl).
    Healthcheck(platform::HealthcheckArgs),
    /// Autoscaling: the backlog per task to keep for a worker.
    Scaling {
        #[command(subcommand)]
        command: platform::ScalingCommand,
    },
}

/// Prints the cost estimate from the scrapes of `sources` (one per `fleet run` process).
async fn print_cost(sources: &[String]) -> Result<(), BoxError> {
    let mut usage = crate::cost::Usage::default();
    for source in sources {
        let text = crate::cost::scrape::fetch(source)
            .await
            .map_err(|e| format!("cannot read the metrics of {source}: {e}"))?;
        usage.add_scrape(&text);
    }
    match usage.estimate() {
        Some(estimate) => println!("{estimate}\n"),
        None => {
            println!("no message received yet by these processes: no cost per message to show\n")
        }
    }
    Ok(())
}

/// Parses the command line and runs the command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Demo { .. } => "error",
        // The process operators deploy says what it runs and how it drains.
        Command::Run(_) => "info",
        _ => "warn",
    };
    telemetry::init(cli.log_format, default_level);
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            say(
                Level::Error,
                &format!("fleet: {}", fleet_bus::chain_text(&*e)),
                &[],
            );
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type CliResult = Result<ExitCode, BoxError>;

async fn run(command: Command) -> CliResult {
    match command {
        Command::Run(args) => run::run_fleet(args).await,
        Command::Config { command } => run::run_config(command),
        Command::Demo {
            orders,
            events,
            seed,
        } => {
            let report = demo::run(DemoOptions {
                orders,
                events,
                seed,
                ..DemoOptions::default()
            })
            .await?;
            println!("{report}");
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Provision { topology } => {
            let topology = Topology::from_file(&topology)?;
            let (transport, config) = aws().await?;
            let mut report = provision(&transport, &topology).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&config);
            let tables = fleet_bus::aws::table::provision_tables(&dynamodb, &topology).await?;
            report.entries.extend(tables.entries);
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            topology,
            no_cloudwatch,
            metrics,
            cost_only,
        } => {
            if !metrics.is_empty() {
                print_cost(&metrics).await?;
                if cost_only {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let topology = Topology::from_file(&topology)?;
            let (transport, config) = aws().await?;
            let cloudwatch = (!no_cloudwatch).then(|| aws_sdk_cloudwatch::Client::new(&config));
            print!(
                "{}",
                stats::table(&stats::collect(&transport, &topology, cloudwatch.as_ref()).await?)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Counters(args) => counters::run_counters(args).await,
        Command::Dlq { command } => dlq::run_dlq(command).await,
        Command::Orders { command } => orders::run_orders(command).await,
        Command::Templates { command } => templates::run_templates(command),
        Command::Topology { command } => topology::run_topology(command),
        Command::Healthcheck(args) => platform::run_healthcheck(args).await,
        Command::Scaling { command } => platform::run_scaling(command).await,
        Command::Send { queue, input } => {
            let (transport, _) = aws().await?;
            let handle = transport.queue(&queue).await?;
            send::run_send(
                BatchProducer::to_queue(&queue, handle.sender()),
                &queue,
                input,
            )
            .await
        }
        Command::Publish { topic, input } => {
            let (transport, _) = aws().await?;
            let publisher = transport.topic(&topic).await?;
            send::run_send(BatchProducer::to_topic(&topic, publisher), &topic, input).await
        }
    }
}

/// What to set when no credentials are found.
const NO_CREDENTIALS: &str = "no AWS credentials: set AWS_PROFILE (after `aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (ECS task role, EC2 instance profile)";

/// The AWS configuration from the environment, refused with what to set when it has no region
/// or no credentials (the SDK would only fail at the first call, with a dispatch error).
pub(crate) async fn aws() -> Result<(SqsTransport, aws_config::SdkConfig), BoxError> {
    let config = fleet_bus::aws::config_loader().load().await;
    if config.region().is_none() {
        return Err("no AWS region: set AWS_REGION (for example AWS_REGION=eu-west-1), or AWS_PROFILE to a profile that has a region".into());
    }
    let Some(credentials) = config.credentials_provider() else {
        return Err(NO_CREDENTIALS.into());
    };
    if let Err(e) = credentials.provide_credentials().await {
        let why = fleet_bus::chain_text(&e);
        let why: Vec<&str> = why.split_whitespace().collect();
        return Err(format!("{NO_CREDENTIALS} ({})", why.join(" ")).into());
    }
    Ok((SqsTransport::new(&config), config))
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
