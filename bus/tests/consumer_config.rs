//! Settings and queues the consumer cannot work with are refused before anything is received.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{BusError, Consumer, ConsumerConfig, Declaration, QueueDecl, Transport};
use tokio_util::sync::CancellationToken;

async fn start(
    bus: EmbeddedBus,
    queue: &str,
    change: impl FnOnce(&mut ConsumerConfig),
) -> Result<fleet_bus::ShutdownReport, BusError> {
    let token = CancellationToken::new();
    token.cancel();
    Consumer::new(bus, queue)
        .handler(handler_fn(|_d: Delivery| async { Ok(()) }))
        .configure(change)
        .run(token)
        .await
}

fn config_error(r: Result<fleet_bus::ShutdownReport, BusError>, needle: &str) {
    match r {
        Err(BusError::Config(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a configuration error about {needle}, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn unworkable_settings_are_refused() {
    let bus = bus_with_queue("settings", 3, Duration::from_secs(30)).await;
    config_error(
        start(bus.clone(), "settings", |c| c.wait_time = Duration::ZERO).await,
        "wait_time",
    );
    config_error(
        start(bus.clone(), "settings", |c| {
            c.visibility_timeout = Some(Duration::from_secs(13 * 3600))
        })
        .await,
        "visibility_timeout",
    );
    config_error(
        start(bus.clone(), "settings", |c| {
            c.max_in_flight = Some(usize::MAX)
        })
        .await,
        "max_in_flight",
    );
    config_error(
        start(bus.clone(), "settings", |c| c.pollers = 0).await,
        "pollers",
    );
    let report = start(bus, "settings", |_| {}).await.unwrap();
    assert_eq!(report.received, 0, "a cancelled token stops at once");
}

#[tokio::test(start_paused = true)]
async fn a_queue_with_a_zero_visibility_timeout_is_refused() {
    let bus = EmbeddedBus::new();
    bus.declare(&Declaration::Queue(&QueueDecl::new("instant-dlq")))
        .await
        .unwrap();
    let q = QueueDecl::new("instant")
        .visibility_timeout(Duration::ZERO)
        .dead_letter("instant-dlq", 3);
    bus.declare(&Declaration::Queue(&q)).await.unwrap();
    config_error(
        start(bus.clone(), "instant", |_| {}).await,
        "visibility timeout",
    );
    start(bus, "instant", |c| {
        c.visibility_timeout = Some(Duration::from_secs(30))
    })
    .await
    .unwrap();
}
