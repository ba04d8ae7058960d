//! The consumer engine, unchanged, on the SQS transport against moto_server: partial outcomes,
//! redrive-aware retries ending in the DLQ with the reason, lease extension, graceful shutdown.
//! moto can hand one message to two concurrent receivers, so assertions are about effects
//! (which messages were processed, which are dead-lettered, what is left), not delivery counts.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::scenarios::unique_name as unique;
use fleet_bus::{Consumer, Message, OutgoingMessage, ReceiveRequest, Transport};
use fleet_tests::fleet::{
    Running, Shared, counts, declare_with_dlq, eventually, lock, quick_config,
};
use fleet_tests::moto;

const SECS: fn(u64) -> Duration = Duration::from_secs;

async fn send(t: &dyn Transport, queue: &str, bodies: &[String]) {
    let q = t.queue(queue).await.unwrap();
    for chunk in bodies.chunks(10) {
        let batch: Vec<_> = chunk.iter().map(OutgoingMessage::new).collect();
        assert!(
            q.sender()
                .send_batch(&batch)
                .await
                .unwrap()
                .iter()
                .all(Result::is_ok)
        );
    }
}

/// Everything in a queue, left there (received with a long visibility, so each once).
async fn drain_view(t: &dyn Transport, queue: &str) -> Vec<Message> {
    let q = t.queue(queue).await.unwrap();
    let mut out: Vec<Message> = Vec::new();
    loop {
        let got = q
            .queue()
            .receive(&ReceiveRequest::new(10, Duration::ZERO).visibility(SECS(60)))
            .await
            .unwrap();
        if got.is_empty() {
            return out;
        }
        for m in got {
            if !out.iter().any(|o| o.id == m.id) {
                out.push(m);
            }
        }
    }
}

async fn drained(t: &dyn Transport, queue: &str) -> bool {
    let c = counts(t, queue).await;
    c.visible + c.in_flight + c.delayed == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_outcomes_settle_each_message_on_sqs() {
    let t = moto::transport().await;
    let name = unique("mixed");
    let dlq = declare_with_dlq(&t, &name, 3, SECS(10)).await;
    let bodies: Vec<String> = (0..9)
        .map(|i| format!("{}{i}", ["ok", "flaky", "bad"][i % 3]))
        .collect();
    send(&t, &name, &bodies).await;
    let done: Shared<BTreeSet<String>> = Arc::default();
    let handler = {
        let done = done.clone();
        handler_fn(move |d: Delivery| {
            let done = done.clone();
            async move {
                let body = d.message.body.clone();
                if body.starts_with("flaky") && d.attempt == 1 {
                    return Err(HandlerError::transient("not yet"));
                }
                if body.starts_with("bad") {
                    return Err(HandlerError::permanent("unparseable").with_label("invalid_input"));
                }
                lock(&done).insert(body);
                Ok(())
            }
        })
    };
    let running = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(handler)
            .config(quick_config()),
    );
    eventually(SECS(60), || async {
        drained(&t, &name).await && counts(&t, &dlq).await.visible >= 3
    })
    .await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert!(report.retried >= 3, "{report}");
    let expected_done: BTreeSet<String> = bodies
        .iter()
        .filter(|b| !b.starts_with("bad"))
        .cloned()
        .collect();
    assert_eq!(*lock(&done), expected_done);
    let dead = drain_view(&t, &dlq).await;
    let dead_bodies: BTreeSet<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(dead_bodies, ["bad2", "bad5", "bad8"].into_iter().collect());
    for m in &dead {
        let r = DeadLetterReason::from_message(m).expect("reason attributes on the SQS message");
        assert_eq!(
            (r.kind.as_str(), r.attempt, r.queue.as_str()),
            ("invalid_input", 1, name.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_after_exactly_max_receive_count_attempts() {
    let t = moto::transport().await;
    let name = unique("poison");
    let dlq = declare_with_dlq(&t, &name, 3, SECS(10)).await;
    send(&t, &name, &["poison".to_owned()]).await;
    let attempts: Shared<Vec<(u32, u32)>> = Arc::default();
    let handler = {
        let attempts = attempts.clone();
        handler_fn(move |d: Delivery| {
            let attempts = attempts.clone();
            async move {
                lock(&attempts).push((d.attempt, d.max_attempts));
                Err(HandlerError::transient("downstream refuses").with_label("downstream_500"))
            }
        })
    };
    // One poller: moto may hand a message to two concurrent receives, which would add attempts.
    let mut config = quick_config();
    config.pollers = 1;
    config.handler_name = "poison-test".into();
    let running = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(handler)
            .config(config),
    );
    eventually(SECS(60), || async { counts(&t, &dlq).await.visible == 1 }).await;
    let report = running.stop().await;
    assert_eq!(
        *lock(&attempts),
        [(1, 3), (2, 3), (3, 3)],
        "attempt k of the queue's maxReceiveCount"
    );
    assert_eq!((report.retried, report.dead_lettered), (2, 1), "{report}");
    assert!(drained(&t, &name).await, "nothing left in the source queue");
    let dead = drain_view(&t, &dlq).await;
    assert_eq!(dead.len(), 1);
    let r = DeadLetterReason::from_message(&dead[0]).unwrap();
    assert_eq!(
        (r.kind.as_str(), r.attempt, r.handler.as_str()),
        ("downstream_500", 3, "poison-test")
    );
    assert!(
        r.message.contains("gave up after attempt 3 of 3")
            && r.message.contains("downstream refuses"),
        "{}",
        r.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_handler_keeps_its_lease_on_sqs() {
    let t = moto::transport().await;
    let name = unique("lease");
    declare_with_dlq(&t, &name, 3, SECS(2)).await;
    send(&t, &name, &["slow job".to_owned()]).await;
    let runs = Arc::new(AtomicU32::new(0));
    let handler = {
        let runs = runs.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(SECS(7)).await;
                Ok(())
            }
        })
    };
    let mut config = quick_config();
    config.pollers = 1;
    let a = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(handler.clone())
            .config(config.clone()),
    );
    eventually(SECS(10), || async { runs.load(Ordering::SeqCst) == 1 }).await;
    // A second consumer polls the whole time: without extensions the message would be visible to
    // it 2 s after the first receive.
    let b = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(handler)
            .config(config),
    );
    eventually(SECS(30), || async { drained(&t, &name).await }).await;
    let (ra, rb) = (a.stop().await, b.stop().await);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "redelivered during the lease: {ra} / {rb}"
    );
    assert!(
        ra.extensions >= 3,
        "7 s under a 2 s visibility timeout: {ra}"
    );
    assert_eq!(ra.acked, 1, "{ra}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing_on_sqs() {
    let t = moto::transport().await;
    let name = unique("shutdown");
    declare_with_dlq(&t, &name, 5, SECS(30)).await;
    let bodies: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
    send(&t, &name, &bodies).await;
    let done: Shared<BTreeSet<String>> = Arc::default();
    let handler = {
        let done = done.clone();
        handler_fn(move |d: Delivery| {
            let done = done.clone();
            async move {
                let n: u64 = d.message.body[1..].parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(300 + (n * 97) % 900)).await;
                lock(&done).insert(d.message.body.clone());
                Ok(())
            }
        })
    };
    let mut config = quick_config();
    config.pollers = 1;
    config.max_in_flight = Some(15);
    config.concurrency = Some(5);
    let running = Running::start(
        Consumer::new(t.clone(), &name)
            .handler(handler)
            .config(config),
    );
    tokio::time::sleep(SECS(2)).await;
    let report = running.stop().await;
    let done = lock(&done).clone();
    let c = counts(&t, &name).await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert!(
        report.released > 0 && !done.is_empty(),
        "shut down mid-load: {report}"
    );
    assert_eq!(
        c.in_flight, 0,
        "released messages are visible at once, none waits out its timeout: {c:?}"
    );
    let left: BTreeSet<String> = drain_view(&t, &name)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert!(done.is_disjoint(&left), "processed messages were deleted");
    let all: BTreeSet<String> = done.union(&left).cloned().collect();
    assert_eq!(
        all,
        bodies.iter().cloned().collect(),
        "every message is processed or back in the queue"
    );
    println!(
        "shutdown on sqs: {report}; processed {}, back in the queue {}",
        done.len(),
        left.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_without_a_dead_letter_queue_refuses_to_start_on_sqs() {
    let t = moto::transport().await;
    let name = unique("no-dlq");
    t.declare(&fleet_bus::Declaration::Queue(&fleet_bus::QueueDecl::new(
        &name,
    )))
    .await
    .unwrap();
    let r = Consumer::new(t.clone(), &name)
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .run(Default::default())
        .await;
    assert!(
        matches!(r, Err(fleet_bus::BusError::Config(_))),
        "{:?}",
        r.err()
    );
    let missing = Consumer::new(t, "does-not-exist")
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .run(Default::default())
        .await;
    assert!(
        matches!(missing, Err(fleet_bus::BusError::NotFound { .. })),
        "{:?}",
        missing.err()
    );
}
