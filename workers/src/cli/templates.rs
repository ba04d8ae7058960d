//! `fleet templates check`: every email template rendered against its `sample.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliResult;
use crate::email::check_dir;

#[derive(Subcommand)]
pub(super) enum TemplatesCommand {
    /// Render every template against its sample.json and print one line per template (name,
    /// subject, sizes). Exit code 1 names the templates that failed.
    Check {
        /// The templates directory (one subdirectory per template).
        #[arg(long, default_value = "deploy/templates")]
        dir: PathBuf,
    },
}

/// Runs a `fleet templates` command.
pub(super) fn run_templates(command: TemplatesCommand) -> CliResult {
    let TemplatesCommand::Check { dir } = command;
    let checks = check_dir(&dir)?;
    if checks.is_empty() {
        return Err(format!("no templates in {}", dir.display()).into());
    }
    for check in &checks {
        println!("{check}");
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.outcome.is_err())
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(format!(
        "{} of {} templates failed: {}",
        failed.len(),
        checks.len(),
        failed.join(", ")
    )
    .into())
}
