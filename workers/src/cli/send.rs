//! `fleet send` and `fleet publish`: reading the input, reporting bad lines, sending.

use std::path::PathBuf;
use std::process::ExitCode;

use fleet_bus::producer::BatchProducer;
use fleet_schemas::MAX_BODY_BYTES;
use serde_json::Value;

use super::{BoxError, CliResult, progress_bar};
use crate::send;
use crate::telemetry::{Level, say};

#[derive(clap::Args)]
pub(super) struct EventInput {
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

/// Validates the input, reports what cannot be sent, sends the rest.
pub(super) async fn run_send(
    destination: BatchProducer,
    name: &str,
    input: EventInput,
) -> CliResult {
    let destination = destination.max_message_bytes(MAX_BODY_BYTES);
    let prepared = prepare(&input, destination.message_limit())?;
    let send::Prepared {
        mut messages,
        lines,
        bad,
    } = prepared;
    for b in &bad {
        let fields = [
            ("line", Value::from(b.line)),
            ("label", Value::from(b.label)),
        ];
        say(Level::Warn, &b.to_string(), &fields);
    }
    if !bad.is_empty() && !input.skip_invalid {
        let message = format!(
            "{} invalid line(s): nothing sent (--skip-invalid sends the valid ones)",
            bad.len()
        );
        say(Level::Error, &message, &[]);
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
        let line = lines[*i];
        let fields = [
            ("line", Value::from(line)),
            ("code", Value::from(e.code.as_str())),
        ];
        say(Level::Error, &format!("line {line} not sent: {e}"), &fields);
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

/// Reads the event or the file and prepares every event in it.
fn prepare(input: &EventInput, max_message_bytes: usize) -> Result<send::Prepared, BoxError> {
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
    Ok(if input.event.is_some() {
        // One event, newlines and all.
        send::prepare([(1, bytes.as_slice())], &input.producer, max_message_bytes)
    } else {
        send::prepare(send::lines_of(&bytes), &input.producer, max_message_bytes)
    })
}
