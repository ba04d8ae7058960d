//! Adaptive polling behind a 20 ms round trip: a deep queue brings up every poller the
//! configuration allows, a quiet one keeps one, so its receives stay as few as one poller's;
//! parked pollers stop at once at shutdown and never look stalled, and one parked while it
//! waits for slots lets go of them at once. Counts, never speeds.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::scenarios::latency::{LatencyTransport, ReceiveCounts};
use fleet_bus::scenarios::support::wait_for as wait_every;
use fleet_bus::{Consumer, OutgoingMessage, ShutdownReport};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

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

/// A poller parked while it waits for slots lets go of the slots it took at once, so the loop
/// that still runs receives a full batch now, not after the parked one's `receive_fill_wait`.
///
/// Thirty slots, batches of ten, one to two pollers, a ten-second fill wait. Two full receives
/// bring up the second poller while the first takes the last ten free slots and receives again.
/// Eight handlers then finish: the second poller takes their slots and waits to fill its batch.
/// The first poller's receive comes back partial (five left in the queue), which parks the
/// second. The first poller's next receive must go out at once and ask for a full batch.
#[tokio::test(start_paused = true)]
async fn a_poller_parked_while_it_waits_for_slots_lets_them_go_at_once() {
    // The active pollers gauge shows the second poller came up (else nothing here is parked).
    // A current-thread runtime runs the consumer on this thread, under this local recorder.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    // A snapshot takes what the gauge moved since the last one (it moves by differences).
    let gauge = std::cell::Cell::new(0.0);
    let active_pollers = || {
        let moved = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == fleet_bus::metrics::ACTIVE_POLLERS)
            .map(|(.., v)| match v {
                DebugValue::Gauge(g) => g.into_inner(),
                other => panic!("{other:?}"),
            })
            .sum::<f64>();
        gauge.set(gauge.get() + moved);
        gauge.get()
    };
    let bus = bus_with_queue("slots", 3, SECS(30)).await;
    send_all(&bus, "slots", numbered(25)).await;
    let slow = LatencyTransport::new(bus.clone(), ROUND_TRIP);
    let receives = slow.receives();
    // Handlers wait for a permit of their own: the test decides when each finishes.
    let finish = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = finish.clone();
    let consumer = Consumer::new(slow, "slots")
        .handler(handler_fn(move |_d: Delivery| {
            let gate = gate.clone();
            async move {
                gate.acquire().await.unwrap().forget();
                Ok(())
            }
        }))
        .configure(|c| {
            c.min_pollers = 1;
            c.pollers = 2;
            c.max_in_flight = Some(30);
            c.receive_fill_wait = SECS(10);
        });
    let running = spawn(consumer);

    // Two full receives (the second scales up to two pollers), then the first poller's third
    // receive is on the wire with the last ten slots.
    wait_every(SECS(1), Duration::from_millis(1), || async {
        receives.calls() == 3
    })
    .await;
    assert_eq!(receives.asked(), [10, 10, 10]);
    assert_eq!(active_pollers(), 2.0, "the second poller runs");
    assert_eq!(receives.on_wire(), 1, "the second poller waits for slots");
    // Eight slots come free while that receive is on the wire: the second poller takes them.
    finish.add_permits(8);
    // The receive returns five of ten and parks the second poller, which must let go of its
    // slots (the eight, and one of the five the partial receive left): thirteen are free, so
    // the first poller receives a full batch at once. The 1 s limit is what catches a parked
    // poller that holds its slots: the batch would be full as well, but only once that
    // poller's 10 s fill wait ended.
    wait_every(SECS(1), Duration::from_millis(1), || async {
        receives.calls() == 4
    })
    .await;
    assert_eq!(receives.asked(), [10, 10, 10, 10], "a full batch");
    assert_eq!(
        active_pollers(),
        1.0,
        "the partial receive parked the second poller"
    );
    assert_eq!(receives.messages(), 25);

    finish.add_permits(1_000);
    assert_all_acked(&running.stop().await, 25);
}
