//! A delivery's view of its lease: it moves on each confirmed extension, and only then.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};
use tokio::time::Instant;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// What a handler saw of its lease: (when, deadline) at the start and at each change.
type Seen = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// A handler that works `work` and records its lease's deadline at the start and on each change.
fn watching(seen: &Seen, work: Duration) -> fleet_bus::consumer::MessageHandler {
    let seen = seen.clone();
    handler_fn(move |d: Delivery| {
        let seen = seen.clone();
        async move {
            let mut lease = d.lease.clone();
            seen.lock()
                .unwrap()
                .push((Instant::now(), lease.deadline()));
            let watch = async {
                while let Some(deadline) = lease.changed().await {
                    seen.lock().unwrap().push((Instant::now(), deadline));
                }
            };
            tokio::select! {
                () = tokio::time::sleep(work) => {}
                () = watch => {}
            }
            Ok(())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_lease_view_moves_on_each_confirmed_extension() {
    let bus = bus_with_queue("view", 3, SECS(10)).await;
    send_all(&bus, "view", vec![OutgoingMessage::new("long work")]).await;
    let seen = Seen::default();
    let running = spawn(Consumer::new(bus.clone(), "view").handler(watching(&seen, SECS(25))));
    wait_drained(&bus, "view", SECS(60)).await;
    let report = running.stop().await;
    let seen = seen.lock().unwrap().clone();
    let (start, first) = seen[0];
    // Visibility 10 s less the 1 s response margin.
    assert_eq!(first, start + SECS(9), "{seen:?}");
    assert!(report.extensions >= 4, "{report}");
    assert_eq!(
        seen.len() as u64 - 1,
        report.extensions,
        "one move per confirmed extension: {seen:?} / {report}"
    );
    for pair in seen.windows(2) {
        let ((_, before), (at, after)) = (pair[0], pair[1]);
        assert!(after > before, "{seen:?}");
        // Each extension asks for the 10 s visibility from when it was sent.
        assert!(
            after <= at + SECS(10) && after + SECS(1) >= at + SECS(10),
            "{seen:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_extension_does_not_move_the_view() {
    let bus = bus_with_queue("view-throttled", 3, SECS(10)).await;
    send_all(&bus, "view-throttled", vec![OutgoingMessage::new("w")]).await;
    let transport = faults::Faulty::new(bus.clone());
    transport.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::throttled(),
        None,
    );
    let seen = Seen::default();
    let consumer = Consumer::new(transport.clone(), "view-throttled");
    let running = spawn(consumer.handler(watching(&seen, SECS(8))));
    tokio::time::sleep(SECS(6)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "extensions were refused");
    transport.clear();
    wait_drained(&bus, "view-throttled", SECS(60)).await;
    let report = running.stop().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(report.acked, 1, "{report}");
    assert!(seen.len() >= 2, "the view moved once extended: {seen:?}");
    assert!(seen[1].0 >= seen[0].0 + SECS(6), "{seen:?}");
}
