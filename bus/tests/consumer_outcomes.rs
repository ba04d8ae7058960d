//! Every message settles as its outcome says: success deletes, a transient failure retries after
//! the policy's delay, a permanent failure or the last attempt dead-letters with the reason.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};
use tokio::time::Instant;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn a_mixed_batch_settles_each_message_as_its_outcome_says() {
    let bus = bus_with_queue("mixed", 3, SECS(30)).await;
    let bodies: Vec<String> = (0..10)
        .map(|i| ["ok", "flaky", "bad"][i % 3].to_owned() + &i.to_string())
        .collect();
    send_all(
        &bus,
        "mixed",
        bodies.iter().map(OutgoingMessage::new).collect(),
    )
    .await;
    let handler = handler_fn(|d: Delivery| async move {
        let body = d.message.body.as_str();
        if body.starts_with("flaky") && d.attempt == 1 {
            return Err(
                HandlerError::transient("dependency unavailable").with_label("upstream_down")
            );
        }
        if body.starts_with("bad") {
            return Err(
                HandlerError::permanent("field `total` missing").with_label("invalid_input")
            );
        }
        Ok(())
    });
    let running = spawn(
        Consumer::new(bus.clone(), "mixed")
            .handler(handler)
            .configure(|c| {
                c.retry = no_jitter(1);
                c.handler_name = "mixed-test".into();
            }),
    );
    wait_drained(&bus, "mixed", SECS(60)).await;
    let report = running.stop().await;
    // 4 ok, 3 flaky (each received twice), 3 bad.
    assert_eq!(report.received, 13, "{report}");
    assert_eq!(report.acked, 7, "{report}");
    assert_eq!(report.retried, 3, "{report}");
    assert_eq!(report.dead_lettered, 3, "{report}");
    assert_eq!(report.received, report.settled(), "{report}");

    let dead = peek_all(&bus, &dlq_name("mixed")).await;
    let mut dead_bodies: Vec<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    dead_bodies.sort_unstable();
    assert_eq!(dead_bodies, ["bad2", "bad5", "bad8"]);
    for m in &dead {
        let reason = DeadLetterReason::from_message(m).expect("reason attributes");
        assert_eq!(reason.kind, "invalid_input");
        assert_eq!(reason.attempt, 1, "permanent failures are not retried");
        assert_eq!(reason.handler, "mixed-test");
        assert_eq!(reason.queue, "mixed");
        assert!(
            reason.message.contains("field `total` missing"),
            "{}",
            reason.message
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_policy_and_the_last_attempt_dead_letters_with_the_reason() {
    let bus = bus_with_queue("retries", 4, SECS(30)).await;
    send_all(&bus, "retries", vec![OutgoingMessage::new("always fails")]).await;
    let seen: Arc<Mutex<Vec<(u32, u32, Instant)>>> = Arc::default();
    let log = seen.clone();
    let handler = handler_fn(move |d: Delivery| {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push((d.attempt, d.max_attempts, Instant::now()));
            Err(HandlerError::transient("smtp 421 try later").with_label("smtp_busy"))
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "retries")
            .handler(handler)
            .configure(|c| {
                c.retry = no_jitter(10);
                c.handler_name = "mailer".into();
            }),
    );
    wait_for(SECS(600), || async {
        counts(&bus, &dlq_name("retries")).await.visible == 1
    })
    .await;
    let report = running.stop().await;

    let seen = seen.lock().unwrap().clone();
    let attempts: Vec<(u32, u32)> = seen.iter().map(|(a, n, _)| (*a, *n)).collect();
    assert_eq!(
        attempts,
        [(1, 4), (2, 4), (3, 4), (4, 4)],
        "attempt k of maxReceiveCount reaches the handler"
    );
    // 10 s, 20 s, 40 s, plus at most the 100 ms delete/visibility flush interval each.
    for (i, expected) in [10u64, 20, 40].into_iter().enumerate() {
        let gap = seen[i + 1].2 - seen[i].2;
        assert!(
            gap >= SECS(expected) && gap <= SECS(expected) + Duration::from_millis(200),
            "gap {i}: {gap:?}, expected {expected} s"
        );
    }
    assert_eq!(
        (report.retried, report.dead_lettered, report.settled()),
        (3, 1, report.received),
        "{report}"
    );

    let dead = peek_all(&bus, &dlq_name("retries")).await;
    assert_eq!(dead.len(), 1);
    let m = &dead[0];
    assert_eq!(m.body, "always fails");
    let reason = DeadLetterReason::from_message(m).expect("reason");
    assert_eq!(
        (
            reason.kind.as_str(),
            reason.attempt,
            reason.handler.as_str()
        ),
        ("smtp_busy", 4, "mailer")
    );
    let reason = DeadLetterReason::from_message(m).unwrap();
    assert!(
        reason.message.starts_with("gave up after attempt 4 of 4"),
        "{}",
        reason.message
    );
    assert_eq!(
        counts(&bus, "retries").await.visible,
        0,
        "explicitly dead-lettered, not left for the redrive"
    );
}

#[tokio::test(start_paused = true)]
async fn a_requested_delay_overrides_the_backoff() {
    let bus = bus_with_queue("retry-after", 5, SECS(30)).await;
    send_all(&bus, "retry-after", vec![OutgoingMessage::new("x")]).await;
    let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = times.clone();
    let handler = handler_fn(move |d: Delivery| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(Instant::now());
            if d.attempt == 1 {
                Err(HandlerError::transient("rate limited").retry_after(SECS(300)))
            } else {
                Ok(())
            }
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "retry-after")
            .handler(handler)
            .configure(|c| c.retry = no_jitter(1)),
    );
    wait_drained(&bus, "retry-after", SECS(900)).await;
    running.stop().await;
    let times = times.lock().unwrap();
    assert_eq!(times.len(), 2);
    assert!(times[1] - times[0] >= SECS(300));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_retried_and_does_not_stop_the_consumer() {
    let bus = bus_with_queue("panics", 2, SECS(30)).await;
    let mut messages: Vec<_> = (0..20)
        .map(|i| OutgoingMessage::new(format!("fine{i}")))
        .collect();
    messages.insert(5, OutgoingMessage::new("boom"));
    send_all(&bus, "panics", messages).await;
    let handler = handler_fn(|d: Delivery| async move {
        assert!(
            d.message.body != "boom",
            "handler bug on {}",
            d.message.body
        );
        Ok(())
    });
    let running = spawn(
        Consumer::new(bus.clone(), "panics")
            .handler(handler)
            .configure(|c| c.retry = no_jitter(1)),
    );
    wait_drained(&bus, "panics", SECS(120)).await;
    let report = running.stop().await;
    assert_eq!(report.acked, 20, "{report}");
    assert_eq!(report.panics, 2, "{report}");
    assert_eq!(report.dead_lettered, 1, "{report}");
    let dead = peek_all(&bus, &dlq_name("panics")).await;
    let reason = DeadLetterReason::from_message(&dead[0]).unwrap();
    assert_eq!(reason.kind, "panic");
    assert!(
        reason.message.contains("handler bug on boom"),
        "{}",
        reason.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_its_timeout_is_cancelled_and_retried() {
    let bus = bus_with_queue("slow", 2, SECS(30)).await;
    send_all(&bus, "slow", vec![OutgoingMessage::new("slow")]).await;
    let handler = handler_fn(|d: Delivery| async move {
        if d.attempt == 1 {
            tokio::time::sleep(SECS(3600)).await;
        }
        Ok(())
    });
    let running = spawn(
        Consumer::new(bus.clone(), "slow")
            .handler(handler)
            .configure(|c| {
                c.handler_timeout = SECS(10);
                c.retry = no_jitter(1);
            }),
    );
    wait_drained(&bus, "slow", SECS(120)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.timeouts, report.retried, report.acked),
        (1, 1, 1),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queue_without_redrive_gets_bounded_retries_into_the_configured_queue() {
    let bus = fleet_bus::embedded::EmbeddedBus::new();
    use fleet_bus::{Declaration, QueueDecl, Transport};
    bus.declare(&Declaration::Queue(&QueueDecl::new("plain")))
        .await
        .unwrap();
    bus.declare(&Declaration::Queue(&QueueDecl::new("plain-failures")))
        .await
        .unwrap();
    send_all(&bus, "plain", vec![OutgoingMessage::new("never works")]).await;
    let handler = handler_fn(|_d: Delivery| async move { Err(HandlerError::transient("down")) });
    let no_dlq = Consumer::new(bus.clone(), "plain")
        .handler(handler.clone())
        .run(tokio_util::sync::CancellationToken::new())
        .await;
    assert!(
        matches!(no_dlq, Err(fleet_bus::BusError::Config(_))),
        "refuses to run without a dead-letter queue"
    );
    let running = spawn(
        Consumer::new(bus.clone(), "plain")
            .handler(handler)
            .configure(|c| {
                c.max_attempts = Some(3);
                c.dead_letter_queue = Some("plain-failures".into());
                c.retry = no_jitter(1);
            }),
    );
    wait_for(SECS(120), || async {
        counts(&bus, "plain-failures").await.visible == 1
    })
    .await;
    let report = running.stop().await;
    assert_eq!(
        (report.received, report.retried, report.dead_lettered),
        (3, 2, 1),
        "{report}"
    );
}

/// A topic that answers its first `throttles` publishes with SNS throttling.
struct ThrottledTopic {
    inner: Arc<dyn fleet_bus::Publisher>,
    throttles: Mutex<u32>,
}

#[async_trait::async_trait]
impl fleet_bus::Publisher for ThrottledTopic {
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<fleet_bus::EntryResult<fleet_bus::SendReceipt>>, fleet_bus::BusError> {
        let throttled = {
            let mut left = self.throttles.lock().unwrap();
            let t = *left > 0;
            *left = left.saturating_sub(1);
            t
        };
        if throttled {
            return Err(fleet_bus::BusError::Api {
                resource: "follow-ups".into(),
                operation: "PublishBatch",
                code: "Throttling".into(),
                message: "rate exceeded".into(),
                retryable: true,
                source: None,
            });
        }
        self.inner.publish_batch(messages).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_follow_up_publish_is_retried_not_dead_lettered() {
    use fleet_bus::{Declaration, TopicDecl, Transport};
    let bus = bus_with_queue("follow-up", 10, SECS(30)).await;
    bus.declare(&Declaration::Topic(&TopicDecl::new("follow-ups")))
        .await
        .unwrap();
    send_all(&bus, "follow-up", vec![OutgoingMessage::new("order 1")]).await;
    let topic: Arc<dyn fleet_bus::Publisher> = Arc::new(ThrottledTopic {
        inner: bus.topic("follow-ups").await.unwrap(),
        throttles: Mutex::new(5),
    });
    let handler = handler_fn(move |d: Delivery| {
        let topic = topic.clone();
        async move {
            // A bus error converts by the one rule: throttling is transient.
            topic
                .publish(OutgoingMessage::new(format!("{} paid", d.message.body)))
                .await?;
            Ok(())
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "follow-up")
            .handler(handler)
            .configure(|c| c.retry = no_jitter(1)),
    );
    wait_drained(&bus, "follow-up", SECS(600)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.retried, report.acked, report.dead_lettered),
        (5, 1, 0),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(counts(&bus, &dlq_name("follow-up")).await.visible, 0);
}
