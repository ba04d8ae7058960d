//! SQS's `StartMessageMoveTask`, used only when asked for and safe: it moves every message of a
//! dead-letter queue as it is, so it would move other queues' dead letters, extra copies and
//! notes along with this queue's.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use fleet_bus::aws::SqsTransport;
use fleet_bus::{BusError, Transport};

use super::examine;
use super::output::count;

/// An SDK error as a bus error: the resource, the operation, and the AWS code and message.
fn api_error<E>(resource: &str, operation: &'static str, e: E) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    BusError::Api {
        resource: resource.to_owned(),
        operation,
        code: e.code().unwrap_or("Unavailable").to_owned(),
        message: e.message().map_or_else(|| e.to_string(), str::to_owned),
        retryable: false,
        source: Some(Box::new(e)),
    }
}

/// The queues whose redrive policy names `dlq` (`ListDeadLetterSourceQueues`), sorted.
///
/// # Errors
/// When the queue does not exist or the call fails.
pub async fn dead_letter_sources(
    transport: &SqsTransport,
    dlq: &str,
) -> Result<Vec<String>, BusError> {
    let url = transport
        .queue_url(dlq)
        .await?
        .ok_or_else(|| BusError::NotFound {
            kind: "queue",
            name: dlq.to_owned(),
        })?;
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = transport
            .sqs()
            .list_dead_letter_source_queues()
            .queue_url(&url)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error(dlq, "ListDeadLetterSourceQueues", e))?;
        names.extend(
            out.queue_urls()
                .iter()
                .map(|u| u.rsplit('/').next().unwrap_or(u).to_owned()),
        );
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    names.sort();
    Ok(names)
}

/// Why a move task from `dlq` to `to` would move more than `to`'s own dead letters, or `None`
/// when it is safe: `dlq` is the dead-letter queue of `to` alone, and it holds only dead letters
/// recorded from `to`, without extra copies or notes (it is read to the end to know). A dead
/// letter arriving after the check is moved too.
///
/// # Errors
/// When a call fails.
pub async fn move_task_refusal(
    transport: &SqsTransport,
    dlq: &str,
    to: &str,
) -> Result<Option<String>, BusError> {
    let sources = dead_letter_sources(transport, dlq).await?;
    if sources != [to] {
        let serves = if sources.is_empty() {
            "is the dead-letter queue of no queue's redrive policy".to_owned()
        } else {
            format!(
                "serves {} ({})",
                count(sources.len(), "queue", "queues"),
                sources.join(", ")
            )
        };
        return Ok(Some(format!(
            "{dlq} {serves}: a move task would move every message in it to {to}"
        )));
    }
    let inspection = examine(transport, dlq, Duration::from_secs(30)).await?;
    let foreign = inspection
        .letters
        .iter()
        .filter(|d| d.source().is_some_and(|q| q != to))
        .count();
    let copies: usize = inspection.letters.iter().map(|d| d.copies.len()).sum();
    let notes: usize = inspection
        .letters
        .iter()
        .map(|d| d.notes.len())
        .sum::<usize>()
        + inspection.orphan_notes.len();
    let mut found = Vec::new();
    if foreign > 0 {
        found.push(format!(
            "{foreign} dead letter(s) recorded from other queues"
        ));
    }
    if copies > 0 {
        found.push(count(copies, "extra copy", "extra copies"));
    }
    if notes > 0 {
        found.push(format!("{notes} note(s)"));
    }
    Ok((!found.is_empty()).then(|| {
        format!(
            "{dlq} holds {}, which a move task would move to {to} as they are",
            found.join(", ")
        )
    }))
}

/// Asks SQS to move every message of `dlq` back to `to` (`StartMessageMoveTask`); returns the
/// task handle.
///
/// # Errors
/// When SQS refuses or does not implement it (moto does not).
pub async fn start_move_task(
    transport: &SqsTransport,
    dlq: &str,
    to: &str,
) -> Result<String, BusError> {
    let source = transport.queue(dlq).await?;
    let dest = transport.queue(to).await?;
    let out = transport
        .sqs()
        .start_message_move_task()
        .source_arn(source.arn())
        .destination_arn(dest.arn())
        .send()
        .await
        .map_err(|e| api_error(dlq, "StartMessageMoveTask", e))?;
    Ok(out.task_handle().unwrap_or_default().to_owned())
}
