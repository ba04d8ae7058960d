//! How each record of an invocation ended, and the partial batch response that tells the event
//! source mapping which records to hand back.

use std::fmt;

use aws_lambda_events::event::sqs::SqsBatchResponse;

/// How one record ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The handler succeeded: the mapping deletes the record.
    Acked,
    /// A transient failure: reported in `batchItemFailures`, received again after the
    /// queue's visibility timeout.
    Retried {
        /// The error kind label.
        label: String,
    },
    /// Sent to the dead-letter queue with its reason (a permanent failure, or the last
    /// attempt): reported as a success so the mapping deletes it.
    DeadLettered {
        /// The reason's kind.
        kind: String,
    },
    /// Its dead-letter send failed: reported as a failure, so it is received again, never lost.
    DeadLetterFailed {
        /// The reason it was to carry.
        kind: String,
    },
    /// FIFO: an earlier message of its group failed, so it did not run (or its outcome is not
    /// kept): reported as a failure to keep the group in order.
    HeldBack,
}

impl RecordOutcome {
    /// Whether the mapping must hand the record back (it is in `batchItemFailures`).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RecordOutcome::Retried { .. }
                | RecordOutcome::DeadLetterFailed { .. }
                | RecordOutcome::HeldBack
        )
    }
}

/// The outcome of every record of one invocation, in the event's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// (message id, outcome) per record.
    pub records: Vec<(String, RecordOutcome)>,
}

impl BatchOutcome {
    /// The ids the mapping must hand back.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(_, o)| o.is_failure())
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// The `ReportBatchItemFailures` response.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.set_failures(self.failed_ids());
        response
    }

    fn count(&self, f: impl Fn(&RecordOutcome) -> bool) -> usize {
        self.records.iter().filter(|(_, o)| f(o)).count()
    }
}

impl fmt::Display for BatchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records: {} acked, {} retried, {} dead-lettered, {} dead-letter sends failed, {} held back",
            self.records.len(),
            self.count(|o| *o == RecordOutcome::Acked),
            self.count(|o| matches!(o, RecordOutcome::Retried { .. })),
            self.count(|o| matches!(o, RecordOutcome::DeadLettered { .. })),
            self.count(|o| matches!(o, RecordOutcome::DeadLetterFailed { .. })),
            self.count(|o| *o == RecordOutcome::HeldBack),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_must_come_back_is_a_batch_item_failure() {
        let outcome = BatchOutcome {
            records: vec![
                ("a".into(), RecordOutcome::Acked),
                ("b".into(), RecordOutcome::Retried { label: "x".into() }),
                ("c".into(), RecordOutcome::DeadLettered { kind: "y".into() }),
                (
                    "d".into(),
                    RecordOutcome::DeadLetterFailed { kind: "y".into() },
                ),
                ("e".into(), RecordOutcome::HeldBack),
            ],
        };
        let json = serde_json::to_value(outcome.response()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": "b"}, {"itemIdentifier": "d"}, {"itemIdentifier": "e"}
            ]})
        );
        assert_eq!(
            outcome.to_string(),
            "5 records: 1 acked, 1 retried, 1 dead-lettered, 1 dead-letter sends failed, 1 held back"
        );
    }
}
