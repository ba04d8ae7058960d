//! Batch handlers report one outcome per message, like Lambda's ReportBatchItemFailures.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, HandlerError, batch_handler_fn};
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{Consumer, OutgoingMessage};

#[tokio::test(start_paused = true)]
async fn each_message_of_a_batch_settles_by_its_own_outcome() {
    let bus = bus_with_queue("batch", 3, Duration::from_secs(30)).await;
    send_all(
        &bus,
        "batch",
        (0..30)
            .map(|i| OutgoingMessage::new(format!("{i}")))
            .collect(),
    )
    .await;
    let handler = batch_handler_fn(|batch: Vec<Delivery>| async move {
        Ok(batch
            .iter()
            .map(|d| {
                let n: u32 = d.message.body.parse().unwrap();
                match n % 3 {
                    0 => Ok(()),
                    1 if d.attempt == 1 => Err(HandlerError::transient("later")),
                    1 => Ok(()),
                    _ => Err(HandlerError::permanent("never").with_label("rejected")),
                }
            })
            .collect())
    });
    let running = spawn(
        Consumer::new(bus.clone(), "batch")
            .handler(handler)
            .configure(|c| {
                c.retry = RetryPolicy {
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(1),
                    jitter: Jitter::None,
                };
            }),
    );
    wait_drained(&bus, "batch", Duration::from_secs(60)).await;
    let report = running.stop().await;
    assert_eq!(
        (report.acked, report.retried, report.dead_lettered),
        (20, 10, 10),
        "{report}"
    );
    assert_eq!(counts(&bus, &dlq_name("batch")).await.visible, 10);
}

#[tokio::test(start_paused = true)]
async fn a_batch_handler_that_miscounts_its_outcomes_retries_the_whole_batch() {
    let bus = bus_with_queue("miscount", 2, Duration::from_secs(30)).await;
    send_all(
        &bus,
        "miscount",
        (0..5)
            .map(|i| OutgoingMessage::new(format!("{i}")))
            .collect(),
    )
    .await;
    let handler = batch_handler_fn(|batch: Vec<Delivery>| async move {
        if batch[0].attempt == 1 {
            Ok(vec![Ok(())])
        } else {
            Ok(batch.iter().map(|_| Ok(())).collect())
        }
    });
    let running = spawn(
        Consumer::new(bus.clone(), "miscount")
            .handler(handler)
            .configure(|c| {
                c.retry = RetryPolicy {
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(1),
                    jitter: Jitter::None,
                };
            }),
    );
    wait_drained(&bus, "miscount", Duration::from_secs(60)).await;
    let report = running.stop().await;
    assert_eq!((report.retried, report.acked), (5, 5), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_batch_handler_is_cancelled_when_a_lease_of_its_batch_is_given_up() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bus = bus_with_queue("batch-lease", 5, Duration::from_secs(10)).await;
    send_all(&bus, "batch-lease", vec![OutgoingMessage::new("work")]).await;
    let faulty = faults::Faulty::new(bus.clone());
    // Every extension hangs: the lease is given up before it runs out.
    faulty.inject(
        faults::Call::ChangeVisibility,
        faults::Fault::Hang(Duration::from_secs(3600)),
        None,
    );
    let finished = Arc::new(AtomicBool::new(false));
    let batch = {
        let finished = finished.clone();
        batch_handler_fn(move |ds: Vec<Delivery>| {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(ds.iter().map(|_| Ok(())).collect())
            }
        })
    };
    let running = spawn(
        Consumer::new(faulty.clone(), "batch-lease")
            .handler(batch)
            .configure(|c| c.pollers = 1),
    );
    // The message is visible again at 10 s; by then the batch must have stopped.
    tokio::time::sleep(Duration::from_millis(9500)).await;
    assert!(!finished.load(Ordering::SeqCst));
    faulty.clear();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "the batch handler ran on after its lease was given up"
    );
    let report = running.stop().await;
    assert_eq!(report.received, report.settled(), "{report}");
    assert!(report.lease_lost >= 1, "{report}");
}
