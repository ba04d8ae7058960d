//! One outcome per record: success, a retry through the mapping, or a dead letter sent here with
//! the reason the engine writes (`fleet_bus::consumer::dead_letter`).

use std::sync::Arc;

use fleet_bus::consumer::dead_letter::{DeadLetterReason, dead_letter_message};
use fleet_bus::consumer::{FailureKind, Redactor};
use fleet_bus::{Message, Sender};

use crate::outcome::RecordOutcome;
use crate::run::Ran;

/// Settles records of one queue.
pub(crate) struct Settler {
    pub queue: String,
    pub handler_name: String,
    pub max_attempts: u32,
    pub dead_letter: Arc<dyn Sender>,
    pub dead_letter_fifo: bool,
    pub redactor: Option<Redactor>,
}

impl Settler {
    /// The engine's rule: a permanent failure, or any failure at the last attempt, is
    /// dead-lettered; another failure is retried.
    pub async fn settle(&self, message: &Message, ran: Ran) -> RecordOutcome {
        let Ran::Failed {
            kind,
            label,
            message: text,
        } = ran
        else {
            return RecordOutcome::Acked;
        };
        let text = match &self.redactor {
            Some(redact) => redact(&text),
            None => text,
        };
        let attempt = message.system.receive_count;
        if kind == FailureKind::Transient && attempt < self.max_attempts {
            tracing::warn!(queue = %self.queue, message_id = %message.id, attempt, max_attempts = self.max_attempts,
                error_type = %label, error = %text, "handler failed; the event source mapping hands the message back");
            return RecordOutcome::Retried { label };
        }
        let text = if kind == FailureKind::Transient {
            format!(
                "gave up after attempt {attempt} of {}: {text}",
                self.max_attempts
            )
        } else {
            text
        };
        let reason = DeadLetterReason {
            kind: label,
            message: text,
            attempt,
            handler: self.handler_name.clone(),
            queue: self.queue.clone(),
            message_id: message.id.clone(),
        };
        self.dead_letter(message, reason).await
    }

    async fn dead_letter(&self, message: &Message, reason: DeadLetterReason) -> RecordOutcome {
        let out = dead_letter_message(message, &reason, self.dead_letter_fifo);
        let sent = async {
            if let Some(note) = out.note {
                self.dead_letter.send(note).await?;
            }
            self.dead_letter.send(out.message).await
        };
        match sent.await {
            Ok(_) => {
                tracing::warn!(queue = %self.queue, message_id = %message.id, kind = %reason.kind,
                    reason = %reason.message, attempt = reason.attempt, "dead-lettered");
                RecordOutcome::DeadLettered { kind: reason.kind }
            }
            Err(e) => {
                tracing::error!(queue = %self.queue, message_id = %message.id, kind = %reason.kind,
                    error = %fleet_bus::chain_text(&e),
                    "the dead-letter send failed; the message is handed back and comes again");
                RecordOutcome::DeadLetterFailed { kind: reason.kind }
            }
        }
    }
}
