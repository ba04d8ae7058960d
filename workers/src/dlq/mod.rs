//! Dead-letter queue operations: list what is there and why, and move messages back to the queue
//! they came from.
//!
//! Reading: a dead-letter queue is read to the end by long polls, until what the queue's count
//! says is there has been read ([`read`](self) explains why short polls undercount on SQS). Each
//! message read is held (its visibility timeout) while reading and made visible again after.
//! Every receive raises a message's `ApproximateReceiveCount` in the DLQ (SQS has no other way
//! to read a message), so that count says how often it was read there, not how often its
//! source queue delivered it; it is shown only as `dlq_receive_count` in JSON.
//!
//! What is there: dead letters with the reason Fleet recorded, copies of one message shown once,
//! notes shown as their message's reason, and notes whose message is gone (see
//! [`DeadLetter`]).
//!
//! Redrive: by receive, send and delete, see [`redrive`]; SQS's `StartMessageMoveTask` only when
//! asked for and safe, see [`move_task_refusal`].

mod group;
mod move_task;
mod output;
mod read;
mod redrive;

use std::time::Duration;

use fleet_bus::{BusError, Transport};

pub use group::{DeadLetter, OrphanNote};
pub use move_task::{dead_letter_sources, move_task_refusal, start_move_task};
pub use output::{orphan_to_json, orphan_to_text, summary, to_json, to_text};
pub use redrive::{RedriveOptions, RedriveReport, redrive};

/// What a dead-letter queue holds, read to the end.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The dead letters, each once, in the order read.
    pub letters: Vec<DeadLetter>,
    /// Notes whose message is not in the queue.
    pub orphan_notes: Vec<OrphanNote>,
    /// Messages read: dead letters, their copies and notes, and orphan notes.
    pub messages_read: usize,
    /// Visible messages by the queue's count when reading started.
    pub counted: u64,
    /// Messages in flight then (held by another reader): not read.
    pub in_flight: u64,
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

/// Reads a whole dead-letter queue without removing anything: each message is held for at
/// least `hold` while the queue is read (longer for a long queue, so the first are still held
/// when the last is read), then made visible again.
///
/// # Errors
/// When a call fails; messages already held become visible again when their hold ends.
pub async fn examine(
    transport: &dyn Transport,
    dlq: &str,
    hold: Duration,
) -> Result<Inspection, BusError> {
    let queue = transport.queue(dlq).await?;
    let counts = queue.admin().describe().await?.counts;
    let (counted, in_flight) = (counts.visible, counts.in_flight);
    let mut reader = read::Reader::new(queue, read::hold_for(hold, counted));
    let read = reader.read(usize::MAX).await;
    reader.release_all().await;
    let messages = read?;
    let messages_read = messages.len();
    let (letters, orphan_notes) = group::group(messages);
    Ok(Inspection {
        letters,
        orphan_notes,
        messages_read,
        counted,
        in_flight,
    })
}

/// The first `max` dead letters of a queue, read as [`examine`] reads them.
///
/// # Errors
/// As [`examine`].
pub async fn inspect(
    transport: &dyn Transport,
    dlq: &str,
    max: usize,
    hold: Duration,
) -> Result<Vec<DeadLetter>, BusError> {
    let mut inspection = examine(transport, dlq, hold).await?;
    inspection.letters.truncate(max);
    Ok(inspection.letters)
}
