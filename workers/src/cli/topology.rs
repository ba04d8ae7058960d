//! `fleet topology export`: the topology as a CloudFormation template.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use fleet_bus::Topology;

use super::CliResult;
use super::run::ConfigArg;
use crate::deploy::{ExportContext, Platform, cloudformation};

/// `fleet topology ...`.
#[derive(Subcommand)]
pub enum TopologyCommand {
    /// Print (or write) the topology's queues, dead-letter queues, topics, subscriptions, queue
    /// and topic policies and tables, with each enabled worker's role, as a template: deploy it
    /// with CloudFormation instead of `fleet provision`. The topology is the configuration's
    /// `topology` file.
    Export {
        /// The template format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        config: ConfigArg,
        /// Where the workers run: none (resources and roles only), ecs, ec2 or lambda.
        #[arg(long, value_enum, default_value_t = Platform::None)]
        platform: Platform,
        /// Write the template to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Template formats `fleet topology export` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// An AWS CloudFormation template, in JSON.
    Cloudformation,
}

/// Runs a `fleet topology` command.
pub fn run_topology(command: TopologyCommand) -> CliResult {
    match command {
        TopologyCommand::Export {
            format: ExportFormat::Cloudformation,
            config,
            platform,
            output,
        } => {
            let effective = config.load()?;
            let topology = Topology::from_file(&effective.config.topology)?;
            topology.check_consumer_needs()?;
            let ctx = ExportContext {
                topology: &topology,
                config: &effective.config,
                platform,
            };
            crate::deploy::iam::check(&ctx)?;
            crate::deploy::platform::check(&ctx)?;
            let text = cloudformation::render(&cloudformation::template(&ctx));
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => crate::terminal::write_stdout(&text)
                    .map_err(|e| format!("cannot write the template: {e}"))?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
