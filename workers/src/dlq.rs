//! Dead-letter queue operations: list what is there and why, and move messages back to the queue
//! they came from.

use std::collections::HashSet;
use std::time::Duration;

use fleet_bus::consumer::dead_letter::{DeadLetterReason, own_attributes};
use fleet_bus::producer::BatchProducer;
use fleet_bus::{BusError, Message, OutgoingMessage, ReceiveRequest, Transport, VisibilityChange};

/// A dead-lettered message and the reason Fleet recorded, if it went through Fleet.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The message as it sits in the dead-letter queue.
    pub message: Message,
    /// Why it was dead-lettered (absent when SQS redrove it bare).
    pub reason: Option<DeadLetterReason>,
}

/// Which dead-letter queue belongs to `queue`: the one its redrive policy names.
///
/// # Errors
/// When the queue does not exist or has no redrive policy.
pub async fn dead_letter_queue_of(
    transport: &dyn Transport,
    queue: &str,
) -> Result<String, BusError> {
    let d = transport.queue(queue).await?.admin().describe().await?;
    d.redrive
        .map(|r| r.dead_letter_queue_name().to_owned())
        .ok_or_else(|| {
            BusError::Config(format!(
                "queue {queue} has no redrive policy: name the dead-letter queue with --dlq"
            ))
        })
}

/// Reads up to `max` messages of a dead-letter queue without removing them: they are held for
/// `hold` while being read, then made visible again.
///
/// # Errors
/// When a call fails; messages already held become visible again when `hold` ends.
pub async fn inspect(
    transport: &dyn Transport,
    dlq: &str,
    max: usize,
    hold: Duration,
) -> Result<Vec<DeadLetter>, BusError> {
    let q = transport.queue(dlq).await?;
    let mut out: Vec<DeadLetter> = Vec::new();
    while out.len() < max {
        let n = (max - out.len()).min(10);
        let got = q
            .queue()
            .receive(&ReceiveRequest::new(n, Duration::ZERO).visibility(hold))
            .await?;
        if got.is_empty() {
            break;
        }
        for m in got {
            if !out.iter().any(|d| d.message.id == m.id) {
                out.push(DeadLetter {
                    reason: DeadLetterReason::from_message(&m),
                    message: m,
                });
            }
        }
    }
    for chunk in out.chunks(10) {
        let release: Vec<VisibilityChange> = chunk
            .iter()
            .map(|d| VisibilityChange {
                receipt: d.message.receipt.clone(),
                timeout: Duration::ZERO,
            })
            .collect();
        q.queue().change_visibility_batch(&release).await?;
    }
    Ok(out)
}

/// What a redrive did.
#[derive(Debug, Default)]
pub struct RedriveReport {
    /// Messages now in the source queue and gone from the dead-letter queue.
    pub moved: usize,
    /// Messages that stayed in the dead-letter queue, with why.
    pub failed: Vec<(String, String)>,
    /// Messages left in place because Fleet recorded another source queue for them.
    pub skipped: usize,
}

/// The message to send back: the original body and attributes, without Fleet's reason
/// attributes (the next failure writes fresh ones).
fn back_to_source(m: &Message, fifo: bool) -> OutgoingMessage {
    let mut out = OutgoingMessage::new(m.body.clone());
    out.attributes = own_attributes(m);
    if fifo {
        out.group_id = Some(
            m.system
                .message_group_id
                .clone()
                .unwrap_or_else(|| "fleet-redrive".to_owned()),
        );
        out.deduplication_id = Some(format!("redrive-{}", m.id));
    }
    out
}

/// Whether a dead letter came from `to` (or does not say where it came from).
fn belongs_to(m: &Message, to: &str) -> bool {
    DeadLetterReason::from_message(m).is_none_or(|r| r.queue.is_empty() || r.queue == to)
}

/// Receives this long per call: long enough that an empty answer means an empty queue.
const REDRIVE_WAIT: Duration = Duration::from_secs(1);
/// Messages being moved are held this long; a failed move reappears in the DLQ after it.
const REDRIVE_HOLD: Duration = Duration::from_secs(60);

/// Moves the messages that are in `dlq` when it starts (at most `max`) to `to` by receive, send
/// and delete: a message leaves the dead-letter queue only after `to` accepted it. Messages that
/// Fleet dead-lettered from another queue stay. `progress` hears how many messages each round
/// settled.
///
/// # Errors
/// When a whole call fails; what was moved stays moved, held messages reappear in the
/// dead-letter queue after a minute.
pub async fn redrive(
    transport: &dyn Transport,
    dlq: &str,
    to: &str,
    max: Option<usize>,
    mut progress: impl FnMut(usize),
) -> Result<RedriveReport, BusError> {
    let from = transport.queue(dlq).await?;
    let dest = transport.queue(to).await?;
    let fifo = fleet_bus::topology::is_fifo_name(to);
    // Only what is there now: a message dead-lettered again meanwhile is not moved in a loop.
    let present =
        usize::try_from(from.admin().describe().await?.counts.visible).unwrap_or(usize::MAX);
    let limit = max.map_or(present, |m| m.min(present));
    tracing::info!(
        dlq,
        to,
        present,
        limit,
        "redriving by receive, send and delete"
    );
    let producer = BatchProducer::to_queue(to, dest.sender());
    let mut report = RedriveReport::default();
    let mut held: Vec<Message> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut empty = 0;
    while report.moved + held.len() < limit && empty < 2 {
        let n = (limit - report.moved - held.len()).min(10);
        let got = from
            .queue()
            .receive(&ReceiveRequest::new(n, REDRIVE_WAIT).visibility(REDRIVE_HOLD))
            .await?;
        let fresh: Vec<Message> = got
            .into_iter()
            .filter(|m| seen.insert(m.id.clone()))
            .collect();
        if fresh.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let count = fresh.len();
        tracing::debug!(dlq, received = count, "redrive round");
        let (ours, others): (Vec<Message>, Vec<Message>) =
            fresh.into_iter().partition(|m| belongs_to(m, to));
        report.skipped += others.len();
        held.extend(others);
        let sent = producer
            .send_all(
                ours.iter().map(|m| back_to_source(m, fifo)).collect(),
                |_| {},
            )
            .await;
        for (i, e) in &sent.failed {
            report.failed.push((ours[*i].id.clone(), e.to_string()));
            held.push(ours[*i].clone());
        }
        let accepted: Vec<&Message> = sent.sent.iter().map(|(i, _)| &ours[*i]).collect();
        for chunk in accepted.chunks(10) {
            let receipts: Vec<_> = chunk.iter().map(|m| m.receipt.clone()).collect();
            for (m, r) in chunk
                .iter()
                .zip(from.queue().delete_batch(&receipts).await?)
            {
                match r {
                    Ok(()) => report.moved += 1,
                    // Copied but not deleted: redriven again later, a duplicate rather than a loss.
                    Err(e) => report.failed.push((
                        m.id.clone(),
                        format!("copied but not deleted from the dead-letter queue: {e}"),
                    )),
                }
            }
        }
        progress(count);
    }
    for chunk in held.chunks(10) {
        let release: Vec<VisibilityChange> = chunk
            .iter()
            .map(|m| VisibilityChange {
                receipt: m.receipt.clone(),
                timeout: Duration::ZERO,
            })
            .collect();
        from.queue().change_visibility_batch(&release).await?;
    }
    Ok(report)
}

/// Asks SQS to move every message of `dlq` back to `to` (`StartMessageMoveTask`); returns the
/// task handle.
///
/// # Errors
/// When SQS refuses or does not implement it (moto does not).
pub async fn start_move_task(
    transport: &fleet_bus::aws::SqsTransport,
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
        .map_err(|e| BusError::Api {
            resource: dlq.to_owned(),
            operation: "StartMessageMoveTask",
            code: aws_sdk_sqs::error::ProvideErrorMetadata::code(&e)
                .unwrap_or("Unavailable")
                .to_owned(),
            message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            retryable: false,
            source: Some(Box::new(e)),
        })?;
    Ok(out.task_handle().unwrap_or_default().to_owned())
}

/// One dead letter as a line of text.
pub fn to_text(d: &DeadLetter) -> String {
    let preview: String = d.message.body.chars().take(120).collect();
    let sent = humantime::format_rfc3339_seconds(d.message.system.sent_at);
    match &d.reason {
        Some(r) => format!(
            "{}  sent {sent}  {} from {} after attempt {} in {}: {}\n    {preview}",
            d.message.id, r.kind, r.queue, r.attempt, r.handler, r.message
        ),
        None => format!(
            "{}  sent {sent}  no Fleet reason (moved by the queue's redrive policy after {} receives)\n    {preview}",
            d.message.id, d.message.system.receive_count
        ),
    }
}

/// One dead letter as JSON.
pub fn to_json(d: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "message_id": d.message.id,
        "sent_at": humantime::format_rfc3339_seconds(d.message.system.sent_at).to_string(),
        "receive_count": d.message.system.receive_count,
        "reason": d.reason.as_ref().map(|r| serde_json::json!({
            "kind": r.kind, "message": r.message, "attempt": r.attempt, "handler": r.handler, "queue": r.queue,
        })),
        "body": d.message.body,
    })
}
