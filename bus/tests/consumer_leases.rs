//! Visibility leases: long work keeps its message, a lost lease cancels the handler.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn a_handler_running_five_visibility_timeouts_keeps_its_message() {
    let bus = bus_with_queue("long-work", 3, SECS(10)).await;
    send_all(
        &bus,
        "long-work",
        vec![OutgoingMessage::new("render the report")],
    )
    .await;
    let runs = Arc::new(AtomicU32::new(0));
    let handler = {
        let runs = runs.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(SECS(50)).await;
                Ok(())
            }
        })
    };
    // Two consumers on the same queue: without leases the second would get the message after 10 s.
    let a = spawn(Consumer::new(bus.clone(), "long-work").handler(handler.clone()));
    let b = spawn(Consumer::new(bus.clone(), "long-work").handler(handler));
    tokio::time::sleep(SECS(30)).await;
    let c = counts(&bus, "long-work").await;
    assert_eq!((c.visible, c.in_flight), (0, 1), "still leased mid-way");
    wait_drained(&bus, "long-work", SECS(120)).await;
    let (ra, rb) = (a.stop().await, b.stop().await);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "redelivered while still being handled"
    );
    assert_eq!(ra.acked + rb.acked, 1, "{ra} / {rb}");
    assert!(
        ra.extensions + rb.extensions >= 5,
        "50 s of work under a 10 s lease: {ra} / {rb}"
    );
    assert_eq!(counts(&bus, &dlq_name("long-work")).await.visible, 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_cancels_the_handler_and_is_reported() {
    let bus = bus_with_queue("lost", 3, SECS(10)).await;
    send_all(&bus, "lost", vec![OutgoingMessage::new("doomed")]).await;
    let finished = Arc::new(AtomicBool::new(false));
    let cancelled_seen = Arc::new(AtomicBool::new(false));
    let handler = {
        let (finished, cancelled_seen) = (finished.clone(), cancelled_seen.clone());
        handler_fn(move |d: Delivery| {
            let (finished, cancelled_seen) = (finished.clone(), cancelled_seen.clone());
            async move {
                let token = d.cancel.clone();
                tokio::spawn(async move {
                    token.cancelled().await;
                    cancelled_seen.store(true, Ordering::SeqCst);
                });
                tokio::time::sleep(SECS(60)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let running = spawn(Consumer::new(bus.clone(), "lost").handler(handler));
    tokio::time::sleep(SECS(2)).await;
    // Someone purges the queue: the receipt becomes invalid and the next extension fails.
    bus.embedded_queue("lost").unwrap().purge();
    tokio::time::sleep(SECS(90)).await;
    let report = running.stop().await;
    assert!(
        cancelled_seen.load(Ordering::SeqCst),
        "the delivery's cancel token fired"
    );
    assert!(
        !finished.load(Ordering::SeqCst),
        "the handler was cancelled, not run to the end"
    );
    assert_eq!(
        (report.received, report.lease_lost, report.acked),
        (1, 1, 0),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_extension_keeps_the_lease_and_the_finished_work_is_deleted() {
    let bus = bus_with_queue("throttled", 3, SECS(10)).await;
    send_all(&bus, "throttled", vec![OutgoingMessage::new("work")]).await;
    let transport = faults::Faulty::new(bus.clone());
    transport.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::throttled(),
        None,
    );
    let runs = Arc::new(AtomicU32::new(0));
    let handler = {
        let runs = runs.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                // Finishes while the first extension (due at 5 s) is being throttled.
                tokio::time::sleep(Duration::from_millis(5500)).await;
                Ok(())
            }
        })
    };
    let running = spawn(Consumer::new(transport.clone(), "throttled").handler(handler));
    tokio::time::sleep(SECS(7)).await;
    transport.clear();
    wait_drained(&bus, "throttled", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{report}");
    assert_eq!(
        (report.acked, report.lease_lost),
        (1, 0),
        "the handler's success is not thrown away: {report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_the_twelve_hour_limit_is_stopped_before_its_lease_runs_out() {
    let bus = bus_with_queue("marathon", 3, SECS(60)).await;
    send_all(
        &bus,
        "marathon",
        vec![OutgoingMessage::new("13 hours of work")],
    )
    .await;
    let finished = Arc::new(AtomicBool::new(false));
    let handler = {
        let finished = finished.clone();
        handler_fn(move |_d: Delivery| {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(SECS(13 * 3600)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let running = spawn(
        Consumer::new(bus.clone(), "marathon")
            .handler(handler)
            .configure(|c| c.handler_timeout = SECS(24 * 3600)),
    );
    tokio::time::sleep(SECS(12 * 3600 + 120)).await;
    let calls = bus
        .embedded_queue("marathon")
        .unwrap()
        .api_calls()
        .change_visibility;
    let report = running.stop().await;
    assert!(!finished.load(Ordering::SeqCst));
    assert_eq!((report.lease_lost, report.acked), (1, 0), "{report}");
    // After the limit the queue hands the message out again; that delivery is released at shutdown.
    assert_eq!(report.released, report.received - 1, "{report}");
    // One extension every 30 s for 12 hours (plus two of the second delivery), and no more.
    assert!((1400..=1445).contains(&report.extensions), "{report:?}");
    assert!(
        calls <= 1446,
        "{calls} visibility calls: the settler kept extending at the cap"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_arriving_late_in_a_long_poll_is_handled_once() {
    // Visibility 10 s, the default 20 s long poll: the message arrives 12 s into the poll.
    let bus = bus_with_queue("late", 3, SECS(10)).await;
    let runs = runs::Runs::default();
    let handler = runs.handler(SECS(3));
    let running = spawn(
        Consumer::new(bus.clone(), "late")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    tokio::time::sleep(SECS(12)).await;
    send_all(&bus, "late", vec![OutgoingMessage::new("late")]).await;
    wait_drained(&bus, "late", SECS(120)).await;
    let report = running.stop().await;
    let runs = runs.all();
    assert_eq!(runs.len(), 1, "handled once: {runs:?}");
    assert!(runs[0].finished, "and to the end: {runs:?}");
    assert_eq!(
        (report.received, report.acked, report.lease_lost),
        (1, 1, 0),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(counts(&bus, &dlq_name("late")).await.visible, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_extension_never_lets_a_handler_outlive_its_lease() {
    let bus = bus_with_queue("hung", 10, SECS(10)).await;
    send_all(&bus, "hung", vec![OutgoingMessage::new("work")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // The first extension hangs for 40 s; later ones answer at once.
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::Hang(SECS(40)),
        Some(1),
    );
    let runs = runs::Runs::default();
    let handler = runs.handler(SECS(30));
    let a = spawn(Consumer::new(faulty.clone(), "hung").handler(handler.clone()));
    let b = spawn(Consumer::new(faulty.clone(), "hung").handler(handler));
    wait_drained(&bus, "hung", SECS(300)).await;
    let (ra, rb) = (a.stop().await, b.stop().await);
    let mut runs = runs.all();
    runs.sort_by_key(|r| r.start);
    assert_eq!(
        runs.iter().filter(|r| r.finished).count(),
        1,
        "one run finished: {runs:?}"
    );
    for pair in runs.windows(2) {
        let end = pair[0].end.expect("every run ended");
        assert!(
            end <= pair[1].start,
            "a run went on after the message was handed to another: {runs:?}"
        );
    }
    assert_eq!(ra.acked + rb.acked, 1, "{ra} / {rb}");
    assert_eq!(ra.received, ra.settled(), "{ra}");
    assert_eq!(rb.received, rb.settled(), "{rb}");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_delete_is_retried_while_the_lease_is_kept() {
    let bus = bus_with_queue("slow-deletes", 3, SECS(10)).await;
    send_all(&bus, "slow-deletes", vec![OutgoingMessage::new("work")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    faulty.inject(faults::Call::Delete, faults::Fault::throttled(), None);
    let runs = runs::Runs::default();
    let handler = runs.handler(SECS(1));
    let running = spawn(Consumer::new(faulty.clone(), "slow-deletes").handler(handler));
    // A minute of throttled deletes: six visibility timeouts.
    tokio::time::sleep(SECS(60)).await;
    faulty.clear();
    wait_drained(&bus, "slow-deletes", SECS(60)).await;
    let report = running.stop().await;
    assert_eq!(
        runs.all().len(),
        1,
        "not redelivered while the delete was retried: {report}"
    );
    assert_eq!((report.received, report.acked), (1, 1), "{report}");
    assert_eq!(report.received, report.settled(), "{report}");
    assert!(report.extensions >= 5, "the lease was kept: {report:?}");
}

/// Ends the whole test binary if a test runs longer than `secs` of real time: on a paused clock a
/// task that spins keeps time from advancing, and the test would hang instead of failing.
fn watchdog(test: &'static str, secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("{test}: still running after {secs} s of real time; a task is spinning");
        std::process::exit(101);
    });
}

#[tokio::test(start_paused = true)]
async fn a_retry_waiting_behind_a_hung_extension_does_not_spin() {
    watchdog("a_retry_waiting_behind_a_hung_extension_does_not_spin", 60);
    let bus = bus_with_queue("spin", 5, SECS(10)).await;
    send_all(&bus, "spin", vec![OutgoingMessage::new("x")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // The retry's visibility change is throttled once (it backs off), and meanwhile the lease's
    // extension hangs.
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::throttled(),
        Some(1),
    );
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::Hang(SECS(40)),
        Some(1),
    );
    let handler = handler_fn(|d: Delivery| async move {
        if d.attempt == 1 {
            tokio::time::sleep(Duration::from_millis(3900)).await;
            return Err(fleet_bus::HandlerError::transient("later"));
        }
        Ok(())
    });
    let running = spawn(
        Consumer::new(faulty.clone(), "spin")
            .handler(handler)
            .configure(|c| c.pollers = 1),
    );
    wait_drained(&bus, "spin", SECS(120)).await;
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(report.acked, 1, "{report}");
}

/// A settlement answered with "the receipt no longer holds the message" is a lost lease (the
/// message is back on the queue, or gone), not a failed settlement: the chaos runs saw a retry's
/// visibility change answered so after a network outage outlasted a lease, and `fleet run` then
/// exited 2 ("did not drain cleanly") for a message another process already had.
#[tokio::test(start_paused = true)]
async fn a_retry_whose_receipt_is_gone_is_a_lost_lease_not_a_failed_settlement() {
    let bus = bus_with_queue("gone-retry", 3, SECS(10)).await;
    send_all(&bus, "gone-retry", vec![OutgoingMessage::new("work")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // The retry's visibility change is held up, and the message is purged meanwhile: the
    // receipt is gone when it lands.
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::Hang(SECS(3)),
        Some(1),
    );
    let handler = handler_fn(|_d: Delivery| async { Err(HandlerError::transient("later")) });
    let running = spawn(Consumer::new(faulty.clone(), "gone-retry").handler(handler));
    tokio::time::sleep(SECS(1)).await;
    bus.embedded_queue("gone-retry").unwrap().purge();
    tokio::time::sleep(SECS(30)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.received, report.lease_lost, report.settle_failed),
        (1, 1, 0),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
}
