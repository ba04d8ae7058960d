//! Dead-letter queue operations: list what is there and why, and move messages back to the queue
//! they came from.

use std::collections::HashMap;
use std::time::Duration;

use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::{
    BusError, Message, OutgoingMessage, ReceiveRequest, SendReceipt, Transport, VisibilityChange,
};

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
}

/// The message to send back: the original body and attributes, without Fleet's reason
/// attributes (the next failure writes fresh ones).
fn back_to_source(m: &Message, fifo: bool) -> OutgoingMessage {
    let mut out = OutgoingMessage::new(m.body.clone());
    out.attributes = m
        .attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("fleet."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
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

/// Moves up to `max` messages from `dlq` to `to` by receive, send and delete: a message is deleted
/// from the dead-letter queue only after the source queue accepted it. `progress` hears how many
/// messages each round settled.
///
/// # Errors
/// When a whole call fails; what was moved before stays moved, and held messages reappear in the
/// dead-letter queue after 60 seconds.
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
    let mut report = RedriveReport::default();
    let limit = max.unwrap_or(usize::MAX);
    let mut seen_failed: HashMap<String, ()> = HashMap::new();
    while report.moved + report.failed.len() < limit {
        let n = (limit - report.moved - report.failed.len()).min(10);
        let got = from
            .queue()
            .receive(&ReceiveRequest::new(n, Duration::ZERO).visibility(Duration::from_secs(60)))
            .await?;
        // A message that failed earlier and is held stays held; an empty receive means done.
        let fresh: Vec<Message> = got
            .into_iter()
            .filter(|m| !seen_failed.contains_key(&m.id))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let batch: Vec<OutgoingMessage> = fresh.iter().map(|m| back_to_source(m, fifo)).collect();
        let sent = dest.sender().send_batch(&batch).await?;
        let mut delete = Vec::new();
        for (m, r) in fresh.iter().zip(sent) {
            match r {
                Ok(SendReceipt { .. }) => delete.push(m),
                Err(e) => {
                    seen_failed.insert(m.id.clone(), ());
                    report.failed.push((m.id.clone(), e.to_string()));
                }
            }
        }
        if !delete.is_empty() {
            let receipts: Vec<_> = delete.iter().map(|m| m.receipt.clone()).collect();
            for (m, r) in delete
                .iter()
                .zip(from.queue().delete_batch(&receipts).await?)
            {
                match r {
                    Ok(()) => report.moved += 1,
                    // Sent but not deleted: it will be redriven again later, a duplicate rather
                    // than a loss.
                    Err(e) => report.failed.push((
                        m.id.clone(),
                        format!("copied but not deleted from the dead-letter queue: {e}"),
                    )),
                }
            }
        }
        progress(fresh.len());
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
