//! What a `Router` does with a well-formed message of a type it has no handler for: dead-letter
//! it (the default), acknowledge it with a count, or hand it to a fallback handler. Malformed
//! messages are dead-lettered whatever the choice.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bus::{bus_with_queue, counts, dlq_name, peek_all, send_all, spawn, wait_for};
use common::recorder::counters;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError};
use fleet_bus::{Consumer, OutgoingMessage};
use fleet_schemas::{
    AnalyticsTracked, DECODE_FAILURES, Envelope, Router, SKIPPED, Unknown, decode,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// An analytics queue's load: one analytics event, two Fleet order events the router has no
/// handler for, a type no Fleet version knows, and one malformed body.
fn bodies() -> Vec<String> {
    let paid = common::fixture("order.paid.v2.json");
    vec![
        common::fixture("analytics.tracked.v2.json"),
        common::fixture("order.placed.v2.json"),
        paid.clone(),
        paid.replace("\"order.paid\"", "\"billing.invoiced\""),
        "{\"id\": \"x\", ".to_owned(),
    ]
}

type Seen = Arc<Mutex<Vec<String>>>;

fn analytics(seen: &Seen) -> Router {
    let seen = Arc::clone(seen);
    Router::new("analytics").on::<AnalyticsTracked, _, _>(
        move |e: Envelope<AnalyticsTracked>, _d: Delivery| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(e.payload.name.to_string());
                Ok(())
            }
        },
    )
}

/// Runs `router` over [`bodies`] on `queue` until the queue is empty; returns the report and
/// the dead letters' reason kinds.
async fn run(queue: &str, router: Router) -> (fleet_bus::ShutdownReport, Vec<String>) {
    // Installs the recorder before anything counts.
    counters();
    let bus = bus_with_queue(queue, 5).await;
    let messages = bodies().into_iter().map(OutgoingMessage::new).collect();
    send_all(&bus, queue, messages).await;
    let running = spawn(Consumer::new(bus.clone(), queue).handler(router.into_handler()));
    wait_for(SECS(600), || async {
        counts(&bus, queue).await == Default::default()
    })
    .await;
    let report = running.stop().await;
    let mut kinds: Vec<String> = peek_all(&bus, &dlq_name(queue))
        .await
        .iter()
        .map(|m| DeadLetterReason::from_message(m).unwrap().kind)
        .collect();
    kinds.sort();
    (report, kinds)
}

#[tokio::test(start_paused = true)]
async fn unknown_types_are_dead_lettered_by_default() {
    let queue = "schemas-unknown-default";
    let seen = Seen::default();
    let (report, kinds) = run(queue, analytics(&seen)).await;
    assert_eq!(*seen.lock().unwrap(), ["checkout_started"]);
    assert_eq!(
        kinds,
        [
            "invalid_json",
            "unknown_type",
            "unknown_type",
            "unknown_type"
        ]
    );
    assert_eq!((report.acked, report.dead_lettered), (1, 4), "{report}");
    assert_eq!(report.received, report.settled(), "{report}");
    let unknown = counters().get(
        DECODE_FAILURES,
        &[("queue", queue), ("error_type", "unknown_type")],
    );
    assert_eq!(unknown, 3);
}

#[tokio::test(start_paused = true)]
async fn unknown_types_can_be_acked_and_are_counted_with_bounded_labels() {
    let queue = "schemas-unknown-ack";
    let seen = Seen::default();
    let router = analytics(&seen).unknown_types(Unknown::Ack);
    let (report, kinds) = run(queue, router).await;
    assert_eq!(*seen.lock().unwrap(), ["checkout_started"]);
    assert_eq!(
        kinds,
        ["invalid_json"],
        "malformed input still dead-letters"
    );
    assert_eq!((report.acked, report.dead_lettered), (4, 1), "{report}");
    assert_eq!(report.received, report.settled(), "{report}");
    let skipped = |t: &str| counters().get(SKIPPED, &[("queue", queue), ("outcome", t)]);
    assert_eq!(skipped("order.placed"), 1);
    assert_eq!(skipped("order.paid"), 1);
    // A type outside Fleet's fixed set is counted under one label, so a producer cannot grow the
    // metric's cardinality.
    assert_eq!(skipped("other"), 1);
    assert_eq!(skipped("billing.invoiced"), 0);
    assert_eq!(skipped("analytics.tracked"), 0);
    let unknown = counters().get(
        DECODE_FAILURES,
        &[("queue", queue), ("error_type", "unknown_type")],
    );
    assert_eq!(unknown, 0, "a skipped message is not a decode failure");
}

#[tokio::test(start_paused = true)]
async fn a_fallback_handler_gets_unknown_types_and_its_outcome_stands() {
    let queue = "schemas-unknown-fallback";
    let seen = Seen::default();
    let fallback_seen = Arc::clone(&seen);
    let router = analytics(&seen).fallback(move |d: Delivery| {
        let seen = Arc::clone(&fallback_seen);
        async move {
            let kind = match decode(&d.message.body) {
                Ok(e) => e.header.event_type,
                Err(_) => "foreign".to_owned(),
            };
            seen.lock()
                .unwrap()
                .push(format!("{kind} attempt {}", d.attempt));
            if kind == "order.paid" && d.attempt == 1 {
                return Err(HandlerError::transient("ledger down").with_label("ledger_down"));
            }
            Ok(())
        }
    });
    let (report, kinds) = run(queue, router).await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "checkout_started",
            "foreign attempt 1",
            "order.paid attempt 1",
            "order.paid attempt 2",
            "order.placed attempt 1",
        ]
    );
    assert_eq!(
        kinds,
        ["invalid_json"],
        "malformed input never reaches the fallback"
    );
    assert_eq!(
        (report.acked, report.retried, report.dead_lettered),
        (4, 1, 1),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
}

#[test]
fn the_choice_shows_in_debug() {
    let router = Router::new("r").unknown_types(Unknown::Ack);
    assert!(format!("{router:?}").contains("Ack"), "{router:?}");
    assert_eq!(Unknown::default(), Unknown::DeadLetter);
}
