//! `fleet dlq inspect` and `fleet dlq redrive`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use fleet_bus::aws::SqsTransport;

use super::{CliResult, aws, progress_bar};
use crate::dlq::{self, RedriveOptions, RedriveReport};
use crate::telemetry::{Level, say};

/// Dead letters are held this long (at least) while `inspect` reads the queue.
const INSPECT_HOLD: Duration = Duration::from_secs(30);

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
    /// List dead-lettered messages with the reason Fleet recorded (they stay in the queue). The
    /// whole queue is read, so copies of one message are shown once and notes with their
    /// message; control characters are escaped in text (JSON is exact).
    Inspect {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many dead letters.
        #[arg(long, default_value_t = 50)]
        max: usize,
        /// Print one JSON object per dead letter instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered messages back to the source queue by receive, send and delete, with a
    /// progress bar: one copy of each, after which its other copies and notes are deleted.
    /// Dead letters recorded from another queue stay (and those recording no source, unless the
    /// DLQ is this queue's alone).
    Redrive {
        #[command(flatten)]
        target: DlqTarget,
        /// Move at most this many.
        #[arg(long, conflicts_with = "move_task")]
        max: Option<usize>,
        /// Also move dead letters recorded from another queue or recording none.
        #[arg(long, conflicts_with = "move_task")]
        force: bool,
        /// Use SQS's StartMessageMoveTask instead; refused unless the DLQ is the dead-letter
        /// queue of this queue alone and holds only its dead letters, without copies or notes.
        #[arg(long)]
        move_task: bool,
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
            inspect(&transport, &name, max, json).await
        }
        DlqCommand::Redrive {
            target,
            max,
            force,
            move_task,
        } => {
            let name = resolve(&transport, &target).await?;
            if move_task {
                return start_move_task(&transport, &name, &target.queue).await;
            }
            redrive(&transport, &name, &target.queue, max, force).await
        }
    }
}

async fn inspect(transport: &SqsTransport, name: &str, max: usize, json: bool) -> CliResult {
    let inspection = dlq::examine(transport, name, INSPECT_HOLD).await?;
    let listed = &inspection.letters[..max.min(inspection.letters.len())];
    for d in listed {
        if json {
            println!("{}", dlq::to_json(d));
        } else {
            println!("{}", dlq::to_text(d));
        }
    }
    for o in &inspection.orphan_notes {
        if json {
            println!("{}", dlq::orphan_to_json(o));
        } else {
            println!("{}", dlq::orphan_to_text(o));
        }
    }
    let summary = dlq::summary(&inspection, listed.len(), name);
    if json {
        // stdout stays one dead letter per line.
        say(Level::Info, &summary, &[]);
    } else {
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn start_move_task(transport: &SqsTransport, name: &str, to: &str) -> CliResult {
    if let Some(why) = dlq::move_task_refusal(transport, name, to).await? {
        return Err(format!(
            "not starting a move task: {why}; run without --move-task to move by receive, send and delete"
        )
        .into());
    }
    let handle = dlq::start_move_task(transport, name, to)
        .await
        .map_err(|e| {
            format!(
                "{}; run without --move-task to move by receive, send and delete",
                fleet_bus::chain_text(&e)
            )
        })?;
    println!("started StartMessageMoveTask {handle}: SQS moves the messages of {name} to {to}");
    Ok(ExitCode::SUCCESS)
}

async fn redrive(
    transport: &SqsTransport,
    name: &str,
    to: &str,
    max: Option<usize>,
    force: bool,
) -> CliResult {
    // A dead letter recording no source queue belongs to `to` only if nothing else redrives
    // into this DLQ.
    let unattributed = match dlq::dead_letter_sources(transport, name).await {
        Ok(sources) => sources == [to],
        Err(e) => {
            let why = fleet_bus::chain_text(&e);
            say(
                Level::Warn,
                &format!(
                    "cannot list the queues that redrive into {name} ({why}): dead letters recording no source stay unless --force"
                ),
                &[],
            );
            false
        }
    };
    let options = RedriveOptions {
        max,
        force,
        unattributed,
    };
    let total = transport_visible(transport, name).await?;
    let bar = progress_bar(total, "redriving");
    let report = dlq::redrive(transport, name, to, &options, |n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    print_report(&report, name, to);
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn transport_visible(
    transport: &SqsTransport,
    name: &str,
) -> Result<u64, fleet_bus::BusError> {
    use fleet_bus::Transport;
    Ok(transport
        .queue(name)
        .await?
        .admin()
        .describe()
        .await?
        .counts
        .visible)
}

fn print_report(r: &RedriveReport, name: &str, to: &str) {
    println!("moved {} dead letter(s) from {name} to {to}", r.moved);
    if r.copies_removed > 0 {
        let copies = if r.copies_removed == 1 {
            "copy"
        } else {
            "copies"
        };
        println!(
            "removed {} extra {copies} (the source queue accepted one of each)",
            r.copies_removed
        );
    }
    if r.notes_removed > 0 {
        println!("removed {} note(s) of moved messages", r.notes_removed);
    }
    for (source, n) in &r.left_foreign {
        println!(
            "left {n} dead letter(s) recorded from {source}: not from {to} (--force moves them)"
        );
    }
    if r.left_unattributed > 0 {
        println!(
            "left {} dead letter(s) with no recorded source: {name} is not the dead-letter queue of {to} alone (--force moves them)",
            r.left_unattributed
        );
    }
    if r.left_orphan_notes > 0 {
        println!(
            "left {} note(s) whose message is not in {name}",
            r.left_orphan_notes
        );
    }
    if r.left_over_max > 0 {
        println!("left {} dead letter(s) beyond --max", r.left_over_max);
    }
    for (id, why) in &r.failed {
        say(Level::Error, &format!("not moved: {id}: {why}"), &[]);
    }
}
