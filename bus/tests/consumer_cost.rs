//! The SQS bill: API calls per message for a no-op handler, counted by the queue itself.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::{Consumer, OutgoingMessage};

#[tokio::test(start_paused = true)]
async fn a_thousand_messages_cost_at_most_0_21_api_calls_each() {
    let n = 1000;
    let bus = bus_with_queue("cheap", 5, Duration::from_secs(30)).await;
    send_all(
        &bus,
        "cheap",
        (0..n)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect(),
    )
    .await;
    let before = bus.embedded_queue("cheap").unwrap().api_calls();
    let running = spawn(
        Consumer::new(bus.clone(), "cheap").handler(handler_fn(|_d: Delivery| async { Ok(()) })),
    );
    wait_for(Duration::from_secs(60), || async {
        bus.embedded_queue("cheap").unwrap().api_calls().delete * 10 >= n as u64
    })
    .await;
    let report = running.stop().await;
    let after = bus.embedded_queue("cheap").unwrap().api_calls();
    let dlq = bus.embedded_queue(&dlq_name("cheap")).unwrap().api_calls();
    let calls = after.total() - before.total() + dlq.total();
    let per_message = calls as f64 / n as f64;
    println!("{calls} API calls for {n} messages = {per_message:.3} per message ({after:?})");
    assert_eq!(report.acked, n as u64, "{report}");
    assert!(
        per_message <= 0.21,
        "{per_message:.3} API calls per message: {after:?}"
    );
}
