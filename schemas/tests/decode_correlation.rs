//! Decoding records the envelope's correlation id in the span the message is handled in (the
//! engine's `process` span declares it empty), so the handler's log lines carry it.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use tracing::field::{Empty, Field, Visit};
use tracing::span::{Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every value recorded into a span after it started, as (field, value).
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(String, String)>>>);

impl Visit for Recorded {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let entry = (field.name().to_owned(), format!("{value:?}"));
        self.0.lock().unwrap().push(entry);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let entry = (field.name().to_owned(), value.to_owned());
        self.0.lock().unwrap().push(entry);
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorded {
    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        values.record(&mut self.clone());
    }
}

fn recorded_while_decoding(body: &str) -> Vec<(String, String)> {
    let recorded = Recorded::default();
    let subscriber = tracing_subscriber::registry().with(recorded.clone());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("process", correlation_id = Empty);
        let _in = span.enter();
        let _ = fleet_schemas::decode(body);
    });
    recorded.0.lock().unwrap().clone()
}

#[test]
fn the_correlation_id_is_recorded_in_the_current_span() {
    let body = common::fixture("analytics.tracked.v2.json");
    assert_eq!(
        recorded_while_decoding(&body),
        [("correlation_id".to_owned(), "checkout-7f3a".to_owned())]
    );
}

#[test]
fn a_message_without_one_records_nothing() {
    let body = common::fixture("analytics.tracked.v2.json")
        .replace("\"correlation_id\": \"checkout-7f3a\",", "");
    assert!(
        fleet_schemas::decode(&body).is_ok(),
        "still a valid message"
    );
    assert!(recorded_while_decoding(&body).is_empty());
}

#[test]
fn a_message_that_does_not_decode_records_nothing() {
    assert!(recorded_while_decoding("{\"correlation_id\": \"x\"}").is_empty());
}
