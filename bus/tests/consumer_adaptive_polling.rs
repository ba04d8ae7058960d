//! Adaptive polling behind a 20 ms round trip: a deep queue brings up every poller the
//! configuration allows, a quiet one keeps one, so its receives stay as few as one poller's;
//! parked pollers stop at once at shutdown and never look stalled. Counts, never speeds.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::scenarios::latency::{LatencyTransport, ReceiveCounts};
use fleet_bus::{Consumer, OutgoingMessage, ShutdownReport};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const ROUND_TRIP: Duration = Duration::from_millis(20);

/// A consumer of `queue` through a 20 ms round trip, with a no-op handler and `min..=max`
/// pollers.
fn consumer(
    bus: &EmbeddedBus,
    queue: &str,
    (min, max): (usize, usize),
) -> (Consumer, Arc<ReceiveCounts>) {
    let slow = LatencyTransport::new(bus.clone(), ROUND_TRIP);
    let receives = slow.receives();
    let consumer = Consumer::new(slow, queue)
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .configure(|c| {
            c.min_pollers = min;
            c.pollers = max;
        });
    (consumer, receives)
}

fn assert_all_acked(report: &ShutdownReport, n: usize) {
    assert_eq!(report.acked, n as u64, "{report}");
    assert_eq!(report.received, report.settled(), "{report}");
    assert!(report.is_balanced(), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_deep_queue_brings_up_every_poller_then_an_empty_one_parks_them() {
    let n = 2_000;
    let bus = bus_with_queue("deep", 3, SECS(30)).await;
    send_all(&bus, "deep", numbered(n)).await;
    let (consumer, receives) = consumer(&bus, "deep", (1, 4));
    let running = spawn(consumer);
    wait_drained(&bus, "deep", SECS(120)).await;
    assert_eq!(receives.peak_on_wire(), 4, "every poller received at once");
    // Empty receives park the extra pollers: a minute on the empty queue costs one poller's
    // long polls (20 s each), not four pollers'.
    tokio::time::sleep(SECS(5)).await;
    let before = receives.calls();
    tokio::time::sleep(SECS(60)).await;
    let quiet = receives.calls() - before;
    assert!(quiet <= 4, "{quiet} receives in a quiet minute");
    assert!(receives.on_wire() <= 1);
    assert_all_acked(&running.stop().await, n);
}

#[tokio::test(start_paused = true)]
async fn fixed_bounds_keep_every_poller_polling() {
    let bus = bus_with_queue("fixed", 3, SECS(30)).await;
    let (consumer, receives) = consumer(&bus, "fixed", (3, 3));
    let running = spawn(consumer);
    tokio::time::sleep(SECS(1)).await;
    assert_eq!(
        receives.on_wire(),
        3,
        "min_pollers = pollers: no poller parks"
    );
    assert_all_acked(&running.stop().await, 0);
}

/// A feeder sending one message every 5 ms while the consumer runs; returns the receives made.
async fn trickle(queue: &str, pollers: (usize, usize), n: usize) -> u64 {
    let bus = bus_with_queue(queue, 3, SECS(30)).await;
    let (consumer, receives) = consumer(&bus, queue, pollers);
    let running = spawn(consumer);
    let sender = fleet_bus::Transport::queue(&bus, queue)
        .await
        .unwrap()
        .sender();
    for i in 0..n {
        sender
            .send(OutgoingMessage::new(format!("m{i}")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_drained(&bus, queue, SECS(60)).await;
    let made = receives.calls();
    if pollers.0 == 1 {
        assert_eq!(
            receives.peak_on_wire(),
            1,
            "a quiet queue never needs a second poller"
        );
    }
    assert_all_acked(&running.stop().await, n);
    made
}

#[tokio::test(start_paused = true)]
async fn a_quiet_queue_keeps_one_poller_and_the_receives_of_one() {
    let n = 400;
    let adaptive = trickle("quiet-adaptive", (1, 4), n).await;
    let one = trickle("quiet-one", (1, 1), n).await;
    let four = trickle("quiet-four", (4, 4), n).await;
    println!("receives for {n} messages: adaptive {adaptive}, one poller {one}, four {four}");
    // Each receive takes what arrived during its round trip (about four messages); the paused
    // clock makes the runs alike, the bound allows for one more long poll at the end.
    assert!(adaptive <= one + 2, "adaptive {adaptive}, one poller {one}");
    // Four pollers split the same messages into more receives: what adaptive polling saves.
    assert!(four > 2 * one, "four pollers {four}, one poller {one}");
}

#[tokio::test(start_paused = true)]
async fn parked_pollers_never_look_stalled_and_stop_at_once_at_shutdown() {
    let bus = bus_with_queue("parked", 3, SECS(30)).await;
    let (consumer, receives) = consumer(&bus, "parked", (1, 8));
    let handle = consumer.start().await.unwrap();
    tokio::time::sleep(SECS(600)).await;
    let status = handle.status();
    assert!(status.polling, "{status:?}");
    assert_eq!(status.stalled, None);
    assert_eq!(receives.peak_on_wire(), 1, "seven pollers parked all along");
    // A parked poller that missed the shutdown would hold it until the handlers' grace ends.
    let report = tokio::time::timeout(SECS(1), handle.shutdown())
        .await
        .expect("the shutdown waits for no parked poller")
        .unwrap();
    assert_all_acked(&report, 0);
}
