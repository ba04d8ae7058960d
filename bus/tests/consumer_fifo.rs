//! FIFO: one group's messages run in order, one at a time; groups run in parallel; a failure
//! holds back only its own group.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{Consumer, OutgoingMessage};

const GROUPS: usize = 6;
const PER_GROUP: usize = 12;

#[derive(Default)]
struct Log {
    /// Per group, the messages that succeeded, in the order they did.
    done: BTreeMap<String, Vec<usize>>,
    /// Attempts that started before every earlier message of their group had succeeded.
    out_of_order: Vec<String>,
    failed_once: HashSet<String>,
}

#[tokio::test(start_paused = true)]
async fn groups_keep_their_order_under_concurrency_and_failures() {
    let bus = bus_with_queue("orders.fifo", 5, Duration::from_secs(30)).await;
    let mut messages = Vec::new();
    for i in 0..PER_GROUP {
        for g in 0..GROUPS {
            messages.push(
                OutgoingMessage::new(format!("g{g}:{i}"))
                    .group(format!("g{g}"))
                    .deduplication_id(format!("g{g}-{i}")),
            );
        }
    }
    send_all(&bus, "orders.fifo", messages).await;
    let log: Arc<Mutex<Log>> = Arc::default();
    let running_now = Arc::new(AtomicUsize::new(0));
    let max_parallel = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (log, running_now, max_parallel) =
            (log.clone(), running_now.clone(), max_parallel.clone());
        handler_fn(move |d: Delivery| {
            let (log, running_now, max_parallel) =
                (log.clone(), running_now.clone(), max_parallel.clone());
            async move {
                let (group, seq) = d.message.body.split_once(':').unwrap();
                let seq: usize = seq.parse().unwrap();
                let group = group.to_owned();
                {
                    let mut l = log.lock().unwrap();
                    let done = l.done.entry(group.clone()).or_default();
                    if done.len() != seq {
                        l.out_of_order.push(d.message.body.clone());
                    }
                }
                let now = running_now.fetch_add(1, Ordering::SeqCst) + 1;
                max_parallel.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running_now.fetch_sub(1, Ordering::SeqCst);
                // Every fourth message fails once.
                if seq % 4 == 1
                    && log
                        .lock()
                        .unwrap()
                        .failed_once
                        .insert(d.message.body.clone())
                {
                    return Err(HandlerError::transient("flaky"));
                }
                log.lock().unwrap().done.get_mut(&group).unwrap().push(seq);
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(bus.clone(), "orders.fifo")
            .handler(handler)
            .configure(|c| {
                c.pollers = 3;
                c.retry = RetryPolicy {
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(5),
                    jitter: Jitter::Full,
                };
            }),
    );
    wait_drained(&bus, "orders.fifo", Duration::from_secs(600)).await;
    let report = running.stop().await;
    let log = log.lock().unwrap();
    assert!(
        log.out_of_order.is_empty(),
        "ran before their predecessors: {:?}",
        log.out_of_order
    );
    for g in 0..GROUPS {
        assert_eq!(
            log.done[&format!("g{g}")],
            (0..PER_GROUP).collect::<Vec<_>>(),
            "group g{g}"
        );
    }
    assert!(
        max_parallel.load(Ordering::SeqCst) > 1,
        "groups ran in parallel"
    );
    // Failures are retried in place: nothing is handed back or received twice.
    assert_eq!(
        report.retried_in_place as usize,
        GROUPS * PER_GROUP / 4,
        "{report:?}"
    );
    assert_eq!(
        (report.received as usize, report.retried, report.released),
        (GROUPS * PER_GROUP, 0, 0),
        "{report}"
    );
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(report.received, report.settled(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_head_does_not_spend_the_attempts_of_the_messages_behind_it() {
    let bus = bus_with_queue("budget.fifo", 3, Duration::from_secs(30)).await;
    let messages = (1..=3)
        .map(|i| {
            OutgoingMessage::new(format!("a{i}"))
                .group("a")
                .deduplication_id(format!("a{i}"))
        })
        .collect();
    send_all(&bus, "budget.fifo", messages).await;
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let handler = {
        let seen = seen.clone();
        handler_fn(move |d: Delivery| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((d.message.body.clone(), d.attempt));
                if d.message.body == "a1" && d.attempt < 3 {
                    return Err(HandlerError::transient("not yet"));
                }
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(bus.clone(), "budget.fifo")
            .handler(handler)
            .configure(|c| {
                c.retry = RetryPolicy {
                    base: Duration::from_secs(2),
                    max: Duration::from_secs(10),
                    jitter: Jitter::None,
                };
            }),
    );
    wait_drained(&bus, "budget.fifo", Duration::from_secs(120)).await;
    let report = running.stop().await;
    let seen = seen.lock().unwrap().clone();
    let expected: Vec<(String, u32)> = [("a1", 1), ("a1", 2), ("a1", 3), ("a2", 1), ("a3", 1)]
        .iter()
        .map(|(b, a)| ((*b).to_owned(), *a))
        .collect();
    assert_eq!(
        seen, expected,
        "the messages behind a1 run at their first attempt"
    );
    assert_eq!(
        (report.acked, report.dead_lettered, report.retried_in_place),
        (3, 0, 2),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn failing_groups_hold_back_only_themselves() {
    let bus = bus_with_queue("stall.fifo", 5, Duration::from_secs(30)).await;
    let mut messages = Vec::new();
    // Eight failing groups of ten: four times the default in-flight limit of 20.
    for g in ["a", "b", "d", "e", "f", "h", "i", "j"] {
        for i in 0..10 {
            messages.push(
                OutgoingMessage::new(format!("{g}{i}"))
                    .group(g)
                    .deduplication_id(format!("{g}{i}")),
            );
        }
    }
    send_all(&bus, "stall.fifo", messages).await;
    let handled: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
    let handler = {
        let handled = handled.clone();
        handler_fn(move |d: Delivery| {
            let handled = handled.clone();
            async move {
                let body = d.message.body.clone();
                // The head of every group but c fails and asks for five minutes.
                if body.ends_with('0') && !body.starts_with('c') && d.attempt == 1 {
                    return Err(
                        HandlerError::transient("not yet").retry_after(Duration::from_secs(300))
                    );
                }
                handled
                    .lock()
                    .unwrap()
                    .push((body, tokio::time::Instant::now()));
                Ok(())
            }
        })
    };
    let running = spawn(Consumer::new(bus.clone(), "stall.fifo").handler(handler));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_c = tokio::time::Instant::now();
    let c: Vec<_> = (0..5)
        .map(|i| {
            OutgoingMessage::new(format!("c{i}"))
                .group("c")
                .deduplication_id(format!("c{i}"))
        })
        .collect();
    send_all(&bus, "stall.fifo", c).await;
    wait_for(Duration::from_secs(600), || async {
        handled
            .lock()
            .unwrap()
            .iter()
            .filter(|(b, _)| b.starts_with('c'))
            .count()
            == 5
    })
    .await;
    let c_done = handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(b, _)| b.starts_with('c'))
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    assert!(
        c_done - sent_c <= Duration::from_secs(5),
        "group c waited {:?} behind the failing groups",
        c_done - sent_c
    );
    wait_drained(&bus, "stall.fifo", Duration::from_secs(900)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(report.acked, 85, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_huge_requested_delay_does_not_wedge_its_group() {
    let bus = bus_with_queue("huge.fifo", 5, Duration::from_secs(30)).await;
    let one = |b: &str| OutgoingMessage::new(b).group("a").deduplication_id(b);
    send_all(&bus, "huge.fifo", vec![one("a0")]).await;
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let handled = handled.clone();
        handler_fn(move |d: Delivery| {
            let handled = handled.clone();
            async move {
                if d.message.body == "a0" && d.attempt == 1 {
                    return Err(HandlerError::transient("later").retry_after(Duration::MAX));
                }
                handled.lock().unwrap().push(d.message.body.clone());
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(bus.clone(), "huge.fifo")
            .handler(handler)
            .configure(|c| c.shutdown_timeout = Duration::from_secs(5)),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    // The head waits in place (at most the 12-hour limit); at shutdown it is handed back with
    // what is left of its delay: retried, not released by a crashed group task.
    assert_eq!(
        (report.received, report.retried, report.released),
        (1, 1, 0),
        "{report}"
    );
    assert!(handled.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn panics_and_timeouts_retried_in_place_are_counted() {
    let bus = bus_with_queue("counted.fifo", 5, Duration::from_secs(30)).await;
    send_all(
        &bus,
        "counted.fifo",
        vec![OutgoingMessage::new("x").group("g").deduplication_id("x")],
    )
    .await;
    let handler = handler_fn(|d: Delivery| async move {
        match d.attempt {
            1 => panic!("first try"),
            2 => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "counted.fifo")
            .handler(handler)
            .configure(|c| {
                c.handler_timeout = Duration::from_secs(10);
                c.retry = RetryPolicy {
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(1),
                    jitter: Jitter::None,
                };
            }),
    );
    wait_drained(&bus, "counted.fifo", Duration::from_secs(120)).await;
    let report = running.stop().await;
    assert_eq!(
        (
            report.acked,
            report.retried_in_place,
            report.panics,
            report.timeouts
        ),
        (1, 2, 1, 1),
        "{report:?}"
    );
}
