//! The adapter on moto, fed SQS events in the shape Lambda delivers (standard and FIFO, mixed
//! outcomes): `batchItemFailures` are exactly the transient failures (and, on FIFO, what a
//! group's failure holds back); permanent failures and last attempts are in the dead-letter
//! queue with the engine's reason.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use common::{drain, event, queues, reasons, record};
use fleet_bus::consumer::{ConsumerConfig, batch_handler_fn};
use fleet_bus::{Delivery, HandlerError, handler_fn};
use fleet_lambda::{RecordOutcome, SqsAdapter};
use fleet_tests::moto;

/// Succeeds, fails for a while, or refuses, by its body's first word.
fn by_body(d: &Delivery) -> Result<(), HandlerError> {
    match d.message.body.split(':').next() {
        Some("ok") => Ok(()),
        Some("later") => Err(HandlerError::transient("the store is down").with_label("store_down")),
        Some("never") => Err(HandlerError::permanent("not an order").with_label("not_an_order")),
        Some("boom") => panic!("handler bug"),
        other => panic!("unexpected body {other:?}"),
    }
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        handler_name: "lambda-test".into(),
        ..ConsumerConfig::default()
    }
}

fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_batch_reports_only_transient_failures_and_dead_letters_the_rest() {
    let t = moto::transport().await;
    let (queue, dlq) = queues(&t, "lambda-std", false, 3).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let handler = handler_fn(move |d: Delivery| {
        seen2
            .lock()
            .unwrap()
            .push((d.message.id.clone(), d.attempt, d.max_attempts));
        let r = by_body(&d);
        async move { r }
    });
    let adapter = SqsAdapter::start(&t, &queue, handler, &config())
        .await
        .unwrap();
    assert_eq!(adapter.max_attempts(), 3, "from the queue's redrive policy");
    let json = event(vec![
        record("m-1", "ok:1", 1, None, &queue),
        record("m-2", "later:2", 1, None, &queue),
        record("m-3", "never:3", 1, None, &queue),
        record("m-4", "boom:4", 2, None, &queue),
        record("m-5", "later:5", 3, None, &queue),
        record("m-6", "ok:6", 2, None, &queue),
    ]);
    let event: SqsEvent = serde_json::from_value(json).unwrap();
    let outcome = adapter.handle(event, in_a_minute()).await.unwrap();
    assert_eq!(
        serde_json::to_value(outcome.response()).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-4"}]}),
        "{outcome}"
    );
    assert_eq!(
        outcome.records[4].1,
        RecordOutcome::DeadLettered {
            kind: "store_down".into()
        }
    );
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen[3],
        ("m-4".into(), 2, 3),
        "attempt from ApproximateReceiveCount"
    );
    let dead = reasons(&drain(&t, &dlq).await);
    assert_eq!(dead.len(), 2, "{dead:?}");
    let (body, r) = &dead[0];
    assert_eq!(body, "later:5");
    assert_eq!((r.kind.as_str(), r.attempt), ("store_down", 3));
    assert_eq!(r.message, "gave up after attempt 3 of 3: the store is down");
    assert_eq!(
        (r.handler.as_str(), r.queue.as_str(), r.message_id.as_str()),
        ("lambda-test", queue.as_str(), "m-5")
    );
    let (body, r) = &dead[1];
    assert_eq!(body, "never:3");
    assert_eq!(
        (r.kind.as_str(), r.message.as_str(), r.attempt),
        ("not_an_order", "not an order", 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_stops_at_its_first_failure_and_other_groups_go_on() {
    let t = moto::transport().await;
    let (queue, dlq) = queues(&t, "lambda-fifo", true, 5).await;
    let ran = Arc::new(Mutex::new(Vec::new()));
    let ran2 = ran.clone();
    let handler = handler_fn(move |d: Delivery| {
        ran2.lock().unwrap().push(d.message.body.clone());
        let r = by_body(&d);
        async move { r }
    });
    let adapter = SqsAdapter::start(&t, &queue, handler, &config())
        .await
        .unwrap();
    let json = event(vec![
        record("a-1", "ok:a1", 1, Some("a"), &queue),
        record("b-1", "never:b1", 1, Some("b"), &queue),
        record("a-2", "later:a2", 1, Some("a"), &queue),
        record("b-2", "ok:b2", 1, Some("b"), &queue),
        record("a-3", "ok:a3", 1, Some("a"), &queue),
        record("c-1", "ok:c1", 1, Some("c"), &queue),
    ]);
    let outcome = adapter
        .handle(serde_json::from_value(json).unwrap(), in_a_minute())
        .await
        .unwrap();
    assert_eq!(outcome.failed_ids(), ["a-2", "a-3"], "{outcome}");
    assert_eq!(outcome.records[4].1, RecordOutcome::HeldBack);
    assert!(
        !ran.lock().unwrap().contains(&"ok:a3".to_owned()),
        "a message behind its group's failure never runs"
    );
    let dead = reasons(&drain(&t, &dlq).await);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].0.as_str(), dead[0].1.kind.as_str()),
        ("never:b1", "not_an_order")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_on_fifo_has_the_rest_of_a_failed_group_handed_back() {
    let t = moto::transport().await;
    let (queue, dlq) = queues(&t, "lambda-batch", true, 5).await;
    let handler =
        batch_handler_fn(|ds: Vec<Delivery>| async move { Ok(ds.iter().map(by_body).collect()) });
    let adapter = SqsAdapter::start(&t, &queue, handler, &config())
        .await
        .unwrap();
    let json = event(vec![
        record("a-1", "later:a1", 1, Some("a"), &queue),
        record("a-2", "never:a2", 1, Some("a"), &queue),
        record("b-1", "never:b1", 1, Some("b"), &queue),
        record("b-2", "ok:b2", 1, Some("b"), &queue),
    ]);
    let outcome = adapter
        .handle(serde_json::from_value(json).unwrap(), in_a_minute())
        .await
        .unwrap();
    assert_eq!(outcome.failed_ids(), ["a-1", "a-2"], "{outcome}");
    let dead = reasons(&drain(&t, &dlq).await);
    assert_eq!(
        dead.len(),
        1,
        "only b-1; a-2 comes back behind a-1: {dead:?}"
    );
    assert_eq!(dead[0].0, "never:b1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_stop_before_the_invocation_deadline_and_their_lease_ends_there() {
    let t = moto::transport().await;
    let (queue, _dlq) = queues(&t, "lambda-deadline", false, 5).await;
    let leases = Arc::new(Mutex::new(Vec::new()));
    let leases2 = leases.clone();
    let handler = handler_fn(move |d: Delivery| {
        leases2.lock().unwrap().push(d.lease.deadline());
        async move {
            if d.message.body == "slow" {
                d.cancel.cancelled().await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Ok(())
        }
    });
    let adapter = SqsAdapter::start(&t, &queue, handler, &config())
        .await
        .unwrap();
    let json = event(vec![
        record("fast", "fast", 1, None, &queue),
        record("slow", "slow", 1, None, &queue),
    ]);
    let started = tokio::time::Instant::now();
    // 5 s left: handlers get 4 s (a fifth is kept for dead-letter sends).
    let deadline = SystemTime::now() + Duration::from_secs(5);
    let outcome = adapter
        .handle(serde_json::from_value(json).unwrap(), deadline)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcome.failed_ids(), ["slow"], "{outcome}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(took >= Duration::from_millis(3900), "{took:?}");
    for lease in leases.lock().unwrap().iter() {
        let left = lease.duration_since(started);
        assert!(
            left > Duration::from_millis(3900) && left < Duration::from_millis(4100),
            "the lease (an idempotency record's in-progress lease) ends with the handlers' time: {left:?}"
        );
    }
}
