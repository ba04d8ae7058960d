//! AWS service limits, each declared once with the reason it exists.
//!
//! The embedded transport enforces these exactly as SQS and SNS do, so code that runs on it does
//! not meet a new error the first time it runs against AWS.

use std::time::Duration;

/// SQS and SNS accept at most 10 entries in one batch call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS accepts at most 10 messages per `ReceiveMessage`.
pub const MAX_RECEIVE_MESSAGES: usize = 10;
/// SQS message size cap (body plus attributes), raised from 256 KiB to 1 MiB in August 2025.
pub const MAX_SQS_MESSAGE_BYTES: usize = 1_048_576;
/// SQS caps the summed payload of one `SendMessageBatch` at the single-message cap.
pub const MAX_SQS_BATCH_BYTES: usize = 1_048_576;
/// SNS message size cap (body plus attributes); SNS did not follow SQS to 1 MiB.
pub const MAX_SNS_MESSAGE_BYTES: usize = 262_144;
/// SNS caps the summed payload of one `PublishBatch` at the single-message cap.
pub const MAX_SNS_BATCH_BYTES: usize = 262_144;
/// SQS and SNS accept at most 10 message attributes per message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// SQS long polling waits at most 20 seconds.
pub const MAX_WAIT_TIME: Duration = Duration::from_secs(20);
/// A message can stay invisible at most 12 hours after it was received.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// SQS default visibility timeout for a new queue.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// `DelaySeconds` is at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS default retention for a new queue: 4 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(4 * 24 * 60 * 60);
/// Shortest retention SQS accepts.
pub const MIN_RETENTION: Duration = Duration::from_secs(60);
/// Longest retention SQS accepts: 14 days (what Fleet gives dead-letter queues).
pub const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// FIFO queues and topics drop a repeated deduplication id for 5 minutes.
pub const FIFO_DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// `maxReceiveCount` in a redrive policy is between 1 and 1,000.
pub const MAX_RECEIVE_COUNT_LIMIT: u32 = 1000;
/// Batch entry ids are at most 80 characters.
pub const MAX_BATCH_ENTRY_ID_LEN: usize = 80;
/// Queue names are at most 80 characters (including the `.fifo` suffix).
pub const MAX_QUEUE_NAME_LEN: usize = 80;
/// Topic names are at most 256 characters.
pub const MAX_TOPIC_NAME_LEN: usize = 256;
/// FIFO group and deduplication ids are at most 128 characters.
pub const MAX_FIFO_ID_LEN: usize = 128;
/// The suffix that marks FIFO queues and topics.
pub const FIFO_SUFFIX: &str = ".fifo";
