//! The hooks a worker gives its consumer: a pause gate that stops polling (and shows in the
//! status) while closed, and a redactor that every handler error text passes through before it
//! is logged or written into a dead-letter reason.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, PauseGate, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};
use tokio_util::sync::CancellationToken;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn a_closed_gate_stops_polling_and_reports_why_until_it_opens() {
    let bus = bus_with_queue("gated", 3, SECS(30)).await;
    send_all(&bus, "gated", numbered(5)).await;
    let gate = PauseGate::new();
    gate.pause("SendingPaused: the account cannot send");
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let handle = Consumer::new(bus.clone(), "gated")
        .handler(handler_fn(move |_d: Delivery| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }))
        .pause_gate(gate.clone())
        .start()
        .await
        .unwrap();
    tokio::time::sleep(SECS(120)).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        0,
        "nothing is received while paused"
    );
    assert_eq!(counts(&bus, "gated").await.visible, 5);
    let status = handle.status();
    assert_eq!(
        status.paused.as_deref(),
        Some("SendingPaused: the account cannot send")
    );
    assert!(!status.polling);
    gate.resume();
    wait_drained(&bus, "gated", SECS(60)).await;
    assert_eq!(handle.status().paused, None);
    let report = handle.shutdown().await.unwrap();
    assert_eq!((report.received, report.acked), (5, 5), "{report}");
    assert_eq!(handled.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn a_paused_consumer_still_shuts_down_at_once() {
    let bus = bus_with_queue("gated-stop", 3, SECS(30)).await;
    let gate = PauseGate::new();
    gate.pause("paused");
    let token = CancellationToken::new();
    let run = tokio::spawn(
        Consumer::new(bus.clone(), "gated-stop")
            .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
            .pause_gate(gate)
            .run(token.clone()),
    );
    tokio::time::sleep(SECS(1)).await;
    token.cancel();
    let report = tokio::time::timeout(SECS(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.received, 0);
}

#[tokio::test(start_paused = true)]
async fn handler_errors_pass_through_the_redactor_into_dead_letter_reasons() {
    let bus = bus_with_queue("redacted", 3, SECS(30)).await;
    send_all(&bus, "redacted", vec![OutgoingMessage::new("x")]).await;
    let handler = handler_fn(|_d: Delivery| async {
        Err(HandlerError::permanent("550 <bob@example.com>: no such user").with_label("rejected"))
    });
    let running = spawn(
        Consumer::new(bus.clone(), "redacted")
            .handler(handler)
            .redact(Arc::new(|t: &str| {
                t.replace("bob@example.com", "b***@example.com")
            })),
    );
    wait_for(SECS(60), || async {
        counts(&bus, &dlq_name("redacted")).await.visible >= 1
    })
    .await;
    let report = running.stop().await;
    assert_eq!((report.received, report.dead_lettered), (1, 1), "{report}");
    let dead = peek_all(&bus, &dlq_name("redacted")).await;
    let reasons: Vec<DeadLetterReason> = dead
        .iter()
        .filter_map(DeadLetterReason::from_message)
        .collect();
    assert!(!reasons.is_empty(), "{dead:?}");
    for r in &reasons {
        assert_eq!(r.kind, "rejected");
        assert!(
            r.message.contains("550 <b***@example.com>: no such user"),
            "{}",
            r.message
        );
        assert!(!r.message.contains("bob@"), "{}", r.message);
    }
}
