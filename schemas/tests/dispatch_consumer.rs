//! A `Router` running in the consumer engine on the embedded bus: good messages (raw, SNS-wrapped,
//! previous version) reach their typed handler; bad ones end in the dead-letter queue at the
//! first attempt with `fleet.error.kind` set to the decode label, and are counted.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bus::{bus_with_queue, counts, dlq_name, peek_all, send_all, spawn, wait_for};
use common::recorder::counters;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError};
use fleet_bus::{Consumer, OutgoingMessage};
use fleet_schemas::{DECODE_FAILURES, Envelope, OrderPaid, OrderPlaced, Router};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The bad bodies of these tests and the label each must be dead-lettered with.
fn bad_bodies() -> Vec<(String, &'static str)> {
    let paid = common::fixture("order.paid.v2.json");
    vec![
        ("{\"id\": \"x\", ".to_owned(), "invalid_json"),
        ("[1, 2, 3]".to_owned(), "not_an_object"),
        (
            paid.replace("\"version\": 2", "\"version\": 3"),
            "unsupported_version",
        ),
        (paid.replace("\"EUR\"", "\"eur\""), "invalid_field"),
        (
            paid.replace("\"payment_id\": \"pay_3NxQ9\",", ""),
            "missing_field",
        ),
        // A Fleet type this router has no handler for.
        (common::fixture("analytics.tracked.v2.json"), "unknown_type"),
        (
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m","Message":7}"#.to_owned(),
            "bad_envelope",
        ),
        (format!("{paid}{}", " ".repeat(262_144)), "oversize"),
    ]
}

type Seen = Arc<Mutex<Vec<String>>>;

fn router(seen: &Seen) -> Router {
    let placed = Arc::clone(seen);
    let paid = Arc::clone(seen);
    Router::new("orders")
        .on::<OrderPlaced, _, _>(move |e: Envelope<OrderPlaced>, d: Delivery| {
            let seen = Arc::clone(&placed);
            async move {
                let line = format!(
                    "placed {} {} attempt {}",
                    e.payload.order_id, e.payload.total_cents, d.attempt
                );
                seen.lock().unwrap().push(line);
                Ok(())
            }
        })
        .on::<OrderPaid, _, _>(move |e: Envelope<OrderPaid>, _d: Delivery| {
            let seen = Arc::clone(&paid);
            async move {
                seen.lock()
                    .unwrap()
                    .push(format!("paid {}", e.payload.amount_cents));
                Ok(())
            }
        })
}

#[tokio::test(start_paused = true)]
async fn bad_messages_are_dead_lettered_at_once_with_their_label_and_counted() {
    let queue = "schemas-dispatch";
    // Installs the recorder before anything counts (a count made before it is lost).
    counters();
    let bus = bus_with_queue(queue, 5).await;
    let bad = bad_bodies();
    let mut messages: Vec<OutgoingMessage> = [
        "order.placed.v2.json",
        "order.placed.v1.json",
        "order.placed.v2.sns-moto.json",
        "order.paid.v2.sns.json",
    ]
    .iter()
    .map(|name| OutgoingMessage::new(common::fixture(name)))
    .collect();
    messages.extend(bad.iter().map(|(body, _)| OutgoingMessage::new(body)));
    send_all(&bus, queue, messages).await;

    let seen: Seen = Arc::default();
    let running = spawn(
        Consumer::new(bus.clone(), queue)
            .handler(router(&seen).into_handler())
            .configure(|c| c.handler_name = "orders-router".into()),
    );
    let dlq = dlq_name(queue);
    wait_for(SECS(60), || async {
        counts(&bus, &dlq).await.visible == bad.len() as u64
    })
    .await;
    let report = running.stop().await;

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "paid 5343",
            "placed o-1001 5343 attempt 1",
            "placed o-1001 5343 attempt 1",
            "placed o-1001 5343 attempt 1",
        ]
    );
    assert_eq!((report.acked, report.retried), (4, 0), "{report}");
    assert_eq!(report.dead_lettered, bad.len() as u64, "{report}");
    assert_eq!(report.received, report.settled(), "{report}");

    let expected: BTreeMap<&str, &str> = bad.iter().map(|(b, l)| (b.as_str(), *l)).collect();
    for m in peek_all(&bus, &dlq).await {
        let label = expected[m.body.as_str()];
        assert_eq!(
            DeadLetterReason::from_message(&m).expect("reason").kind,
            label
        );
        let reason = DeadLetterReason::from_message(&m).unwrap();
        assert_eq!(reason.attempt, 1, "{label}: a retry never fixes bad input");
        assert_eq!(reason.handler, "orders-router");
        assert!(
            !reason.message.is_empty() && !reason.message.contains("permanent failure"),
            "{}",
            reason.message
        );
        let failures = counters().get(DECODE_FAILURES, &[("queue", queue), ("error_type", label)]);
        assert_eq!(failures, 1, "{label}");
    }
}

#[tokio::test(start_paused = true)]
async fn handler_outcomes_pass_through_the_router_unchanged() {
    let queue = "schemas-dispatch-retry";
    let bus = bus_with_queue(queue, 5).await;
    send_all(
        &bus,
        queue,
        vec![OutgoingMessage::new(common::fixture("order.paid.v1.json"))],
    )
    .await;
    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let log = Arc::clone(&attempts);
    let router = Router::new("payments").on::<OrderPaid, _, _>(move |_e, d: Delivery| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(d.attempt);
            match d.attempt {
                1 => Err(HandlerError::transient("ledger unavailable").with_label("ledger_down")),
                _ => Ok(()),
            }
        }
    });
    let running = spawn(Consumer::new(bus.clone(), queue).handler(router.into_handler()));
    wait_for(SECS(600), || async {
        counts(&bus, queue).await == Default::default()
    })
    .await;
    let report = running.stop().await;
    assert_eq!(*attempts.lock().unwrap(), [1, 2]);
    assert_eq!(
        (report.retried, report.acked, report.dead_lettered),
        (1, 1, 0),
        "{report}"
    );
    let failures = counters().get(
        DECODE_FAILURES,
        &[("queue", queue), ("error_type", "invalid_field")],
    );
    assert_eq!(failures, 0, "handler failures are not decode failures");
}

#[test]
fn a_router_lists_its_types() {
    let router = Router::new("r")
        .on::<OrderPaid, _, _>(|_e, _d| async { Ok(()) })
        .on::<OrderPlaced, _, _>(|_e, _d| async { Ok(()) });
    assert_eq!(
        router.types().collect::<Vec<_>>(),
        ["order.paid", "order.placed"]
    );
    assert!(format!("{router:?}").contains("order.paid"));
}
