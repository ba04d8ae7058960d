//! [`AnalyticsWorker`]: the batch handler. Decodes each delivery, asks the core what it counts,
//! writes the batch's counters through the store in one call, and maps each delivery's result to
//! its outcome in one `From<AnalyticsError> for HandlerError`.

use std::sync::Arc;

use fleet_bus::consumer::{BatchHandler, Delivery, HandlerError, batch_handler_fn};
use metrics::counter;

use super::aggregate::{self, Counted, EventDeltas};
use super::error::AnalyticsError;
use super::metric;
use super::store::{CounterStore, EventOutcome};

/// The analytics worker: counts `analytics.tracked`, order events and `email.sent`, once per
/// event id.
#[derive(Clone)]
pub struct AnalyticsWorker {
    store: Arc<dyn CounterStore>,
}

impl std::fmt::Debug for AnalyticsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsWorker").finish_non_exhaustive()
    }
}

impl AnalyticsWorker {
    /// A worker writing its counters to `store`.
    pub fn new(store: Arc<dyn CounterStore>) -> Self {
        Self { store }
    }

    /// The worker as a consumer's batch handler (one result per delivery, in order).
    pub fn handler(&self) -> BatchHandler {
        let worker = self.clone();
        batch_handler_fn(move |deliveries: Vec<Delivery>| {
            let worker = worker.clone();
            async move { Ok(worker.handle(deliveries).await) }
        })
    }

    /// Handles one batch: one result per delivery, in order. Malformed messages are refused
    /// (dead-lettered with the schema's label), types the worker does not count are
    /// acknowledged, duplicates are acknowledged, and events whose write failed are retried.
    pub async fn handle(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandlerError>> {
        let mut results: Vec<Option<Result<(), HandlerError>>> =
            deliveries.iter().map(|_| None).collect();
        let mut positions = Vec::new();
        let mut events: Vec<EventDeltas> = Vec::new();
        for (i, delivery) in deliveries.iter().enumerate() {
            match decide(delivery) {
                Ok(Counted::Deltas(deltas)) => {
                    positions.push(i);
                    events.push(deltas);
                }
                Ok(Counted::Skipped { event_type }) => {
                    skipped(delivery, event_type);
                    results[i] = Some(Ok(()));
                }
                // A type unknown to this version (a newer producer's): acknowledged and
                // counted as skipped, never dead-lettered, like the types it does not count.
                Err(AnalyticsError::Schema(fleet_schemas::SchemaError::UnknownType { .. })) => {
                    skipped(delivery, "unknown");
                    results[i] = Some(Ok(()));
                }
                Err(e) => {
                    refused(delivery, &e);
                    results[i] = Some(Err(e.into()));
                }
            }
        }
        if !events.is_empty() {
            let outcomes = self.store.apply(&events).await;
            for (&i, outcome) in positions.iter().zip(outcomes) {
                results[i] = Some(settle(&deliveries[i], outcome));
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(
                        HandlerError::transient("the counter store gave no outcome for this event")
                            .with_label("no_outcome"),
                    )
                })
            })
            .collect()
    }
}

/// What one delivery counts.
fn decide(delivery: &Delivery) -> Result<Counted, AnalyticsError> {
    let envelope = fleet_schemas::decode(&delivery.message.body).map_err(AnalyticsError::Schema)?;
    aggregate::count(&envelope)
}

fn settle(delivery: &Delivery, outcome: EventOutcome) -> Result<(), HandlerError> {
    match outcome {
        EventOutcome::Applied => {
            observe(delivery, "applied");
            Ok(())
        }
        EventOutcome::Duplicate => {
            observe(delivery, "duplicate");
            tracing::debug!(queue = %delivery.queue, message_id = %delivery.message.id,
                "event counted before; acknowledged");
            Ok(())
        }
        EventOutcome::Failed(failure) => {
            observe(delivery, "failed");
            Err(AnalyticsError::Write(failure).into())
        }
    }
}

/// A type the worker does not count: acknowledged on purpose, counted as the router counts the
/// types it has no handler for.
fn skipped(delivery: &Delivery, event_type: &'static str) {
    observe(delivery, "skipped");
    counter!(fleet_schemas::SKIPPED, "queue" => delivery.queue.to_string(), "outcome" => event_type)
        .increment(1);
    tracing::debug!(queue = %delivery.queue, message_id = %delivery.message.id, event_type,
        "not counted by the analytics worker; acknowledged");
}

/// A message that cannot be counted: it goes to the dead-letter queue with its label.
fn refused(delivery: &Delivery, error: &AnalyticsError) {
    observe(delivery, "refused");
    if let AnalyticsError::Schema(schema) = error {
        counter!(fleet_schemas::DECODE_FAILURES, "queue" => delivery.queue.to_string(),
            "error_type" => schema.label())
        .increment(1);
    }
    tracing::warn!(queue = %delivery.queue, message_id = %delivery.message.id,
        error = %fleet_bus::chain_text(error), "event cannot be counted; it goes to the dead-letter queue");
}

fn observe(delivery: &Delivery, outcome: &'static str) {
    counter!(metric::EVENTS, "queue" => delivery.queue.to_string(), "outcome" => outcome)
        .increment(1);
}

/// The one place an analytics failure becomes an outcome: bad input is dead-lettered at once
/// with its label (the schema's own rule for decoding errors), a failed write is retried.
impl From<AnalyticsError> for HandlerError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::Schema(schema) => HandlerError::from(schema),
            e @ AnalyticsError::InvalidProperty { .. } => {
                HandlerError::permanent(e).with_label("invalid_field")
            }
            AnalyticsError::Write(failure) => {
                let label = failure.label;
                HandlerError::transient(AnalyticsError::Write(failure)).with_label(label)
            }
            e @ AnalyticsError::Read(_) => {
                HandlerError::transient(e).with_label("counter_read_failed")
            }
            e @ AnalyticsError::Query(_) => HandlerError::permanent(e).with_label("invalid_query"),
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_bus::consumer::FailureKind;

    use super::*;
    use crate::analytics::WriteFailure;

    fn outcome(e: AnalyticsError) -> (FailureKind, String, String) {
        let h = HandlerError::from(e);
        (h.kind(), h.label().to_owned(), h.cause_text())
    }

    #[test]
    fn bad_input_is_dead_lettered_with_its_label_and_failed_writes_are_retried() {
        let schema = fleet_schemas::decode("{\"id\": 1").unwrap_err();
        let (kind, label, _) = outcome(AnalyticsError::Schema(schema));
        assert_eq!(
            (kind, label.as_str()),
            (FailureKind::Permanent, "invalid_json")
        );
        let (kind, label, text) = outcome(AnalyticsError::InvalidProperty {
            name: "order_paid".into(),
            property: "currency",
            reason: "missing".into(),
        });
        assert_eq!(
            (kind, label.as_str()),
            (FailureKind::Permanent, "invalid_field")
        );
        assert_eq!(
            text,
            "invalid `payload.properties.currency` for order_paid: missing"
        );
        let failure = WriteFailure::new(
            "transaction_conflict",
            crate::analytics::error::Said("busy".into()),
        );
        let (kind, label, text) = outcome(AnalyticsError::Write(failure));
        assert_eq!(
            (kind, label.as_str()),
            (FailureKind::Transient, "transaction_conflict")
        );
        assert_eq!(
            text,
            "writing the event's counters failed: transaction_conflict: busy"
        );
        let (kind, label, _) = outcome(AnalyticsError::Query("no".into()));
        assert_eq!(
            (kind, label.as_str()),
            (FailureKind::Permanent, "invalid_query")
        );
    }
}
