//! What a consumer logs: one line per outcome the engine decides (a failure and its retry are
//! one line), and lines about a failing dependency at a bounded rate; dead-letters always.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};
use serde_json::Value;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// JSON log lines written while the guard lives (on this test's thread).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        (lines, tracing::subscriber::set_default(subscriber))
    }

    /// Every line of the bus, parsed.
    fn all(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect(l))
            .filter(|v| {
                v["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("fleet_bus"))
            })
            .collect()
    }

    /// The lines about one message, in order.
    fn about(&self, message_id: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|v| v["message_id"] == message_id)
            .collect()
    }
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(start_paused = true)]
async fn each_outcome_is_one_line_and_a_failure_with_its_retry_is_one() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("told", 3, SECS(30)).await;
    send_all(
        &bus,
        "told",
        ["ok", "flaky", "bad"].map(OutgoingMessage::new).to_vec(),
    )
    .await;
    let ids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let seen = ids.clone();
    let handler = handler_fn(move |d: Delivery| {
        let seen = seen.clone();
        async move {
            let body = d.message.body.clone();
            seen.lock()
                .unwrap()
                .insert(body.clone(), d.message.id.clone());
            match body.as_str() {
                "flaky" if d.attempt == 1 => {
                    Err(HandlerError::transient("upstream said 503").with_label("upstream_down"))
                }
                "bad" => {
                    Err(HandlerError::permanent("field `total` missing").with_label("bad_input"))
                }
                _ => Ok(()),
            }
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "told")
            .handler(handler)
            .configure(|c| {
                c.retry = no_jitter(1);
                c.handler_name = "told-worker".into();
            }),
    );
    wait_drained(&bus, "told", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.acked, report.retried, report.dead_lettered),
        (2, 1, 1),
        "{report}"
    );
    let ids = ids.lock().unwrap().clone();
    let shape = |id: &str| -> Vec<(String, String)> {
        lines
            .about(id)
            .iter()
            .map(|v| (text(v, "level"), text(v, "message")))
            .collect()
    };
    let handled = ("DEBUG".to_owned(), "message handled".to_owned());
    assert_eq!(shape(&ids["ok"]), vec![handled.clone()]);
    let retried = (
        "INFO".to_owned(),
        "handler failed; the message will be retried".to_owned(),
    );
    assert_eq!(shape(&ids["flaky"]), vec![retried, handled]);
    let dead = (
        "WARN".to_owned(),
        "message goes to the dead-letter queue".to_owned(),
    );
    assert_eq!(shape(&ids["bad"]), vec![dead]);

    let retry = &lines.about(&ids["flaky"])[0];
    assert_eq!(retry["error_type"], "upstream_down");
    assert_eq!(retry["delay_ms"], 1000);
    assert_eq!(retry["attempt"], 1);
    assert_eq!(retry["worker"], "told-worker");
    assert_eq!(retry["queue"], "told");
    assert!(
        text(retry, "reason").contains("upstream said 503"),
        "{retry}"
    );
    assert!(
        retry.get("suppressed").is_none(),
        "only when lines were held back"
    );
    let dead = &lines.about(&ids["bad"])[0];
    assert_eq!(dead["kind"], "bad_input");
    assert!(
        text(dead, "reason").contains("field `total` missing"),
        "{dead}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_after_one_failing_dependency_are_rate_limited_and_dead_letters_never() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("flood", 2, SECS(30)).await;
    send_all(&bus, "flood", numbered(30)).await;
    let handler = handler_fn(|_d: Delivery| async move {
        Err(HandlerError::transient("connection refused").with_label("db_down"))
    });
    let running = spawn(
        Consumer::new(bus.clone(), "flood")
            .handler(handler)
            .configure(|c| {
                c.retry = no_jitter(1);
                c.max_in_flight = Some(30);
            }),
    );
    wait_drained(&bus, "flood", SECS(60)).await;
    // Past the rate limit's interval, so what was held back is reported.
    tokio::time::sleep(SECS(30)).await;
    let report = running.stop().await;
    assert_eq!((report.retried, report.dead_lettered), (30, 30), "{report}");
    let all = lines.all();
    let retries = all
        .iter()
        .filter(|v| text(v, "message").contains("will be retried"))
        .count();
    let dead = all
        .iter()
        .filter(|v| text(v, "message").contains("dead-letter queue"))
        .count();
    let held: Vec<&Value> = all
        .iter()
        .filter(|v| text(v, "message").contains("held back"))
        .collect();
    assert_eq!(retries, 5, "the first five");
    assert_eq!(dead, 30, "every dead-letter is told");
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(held[0]["suppressed"], 25);
    assert!(text(held[0], "about").contains("db_down"), "{}", held[0]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_receive_logs_at_a_bounded_rate() {
    let (lines, _guard) = Lines::capture();
    let bus = bus_with_queue("down", 3, SECS(30)).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(
        faults::Call::Receive,
        faults::Fault::Fail {
            code: "ServiceUnavailable",
            retryable: true,
        },
        None,
    );
    let running = spawn(
        Consumer::new(faulty, "down")
            .handler(handler_fn(|_d: Delivery| async move { Ok(()) }))
            // Failed receives park pollers down to min_pollers: keep all eight failing.
            .configure(|c| {
                c.pollers = 8;
                c.min_pollers = 8;
            }),
    );
    tokio::time::sleep(SECS(120)).await;
    running.stop().await;
    let all = lines.all();
    let failed: Vec<&Value> = all
        .iter()
        .filter(|v| text(v, "message") == "queue API call failed")
        .collect();
    let held: u64 = all.iter().filter_map(|v| v["suppressed"].as_u64()).sum();
    // 8 pollers backing off from 200 ms to 30 s fail about 80 times in two minutes.
    let total = failed.len() as u64 + held;
    assert!(total >= 60, "{total} failures told or counted");
    // The first five, then at most one per 10 s (plus the report of the last ones held back).
    assert!(failed.len() <= 5 + 12 + 1, "{} lines", failed.len());
    assert!(failed.iter().all(|v| v["error_type"] == "service"));
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_at_the_last_receive_logs_no_dead_letter() {
    let (lines, _guard) = Lines::capture();
    // One receive allowed: the cancelled handler's release becomes a dead-letter verdict, which
    // the settler never carries out, since the lease is gone.
    let bus = bus_with_queue("lost-last", 1, SECS(10)).await;
    send_all(&bus, "lost-last", vec![OutgoingMessage::new("doomed")]).await;
    let handler = handler_fn(|_d: Delivery| async move {
        tokio::time::sleep(SECS(60)).await;
        Ok(())
    });
    let running = spawn(Consumer::new(bus.clone(), "lost-last").handler(handler));
    tokio::time::sleep(SECS(2)).await;
    // A purge invalidates the receipt: the next extension fails and the lease is lost.
    bus.embedded_queue("lost-last").unwrap().purge();
    tokio::time::sleep(SECS(90)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.lease_lost, report.dead_lettered),
        (1, 0),
        "{report}"
    );
    let dead: Vec<_> = lines
        .all()
        .into_iter()
        .filter(|v| text(v, "message") == "message goes to the dead-letter queue")
        .collect();
    assert!(
        dead.is_empty(),
        "a dead-letter that never happened was logged: {dead:?}"
    );
}
