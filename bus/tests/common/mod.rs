//! The consumer tests' set-up on the embedded transport, over the shared test support.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::time::Duration;

use fleet_bus::Consumer;
use fleet_bus::embedded::EmbeddedBus;
#[allow(unused_imports)] // each test file uses a different part
pub use fleet_bus::scenarios::support::{
    Running, counts, dlq_name, peek_all, send_all, wait_drained,
};

/// A bus with `name` redriving into `name-dlq` after `max_receive_count` receives.
pub async fn bus_with_queue(
    name: &str,
    max_receive_count: u32,
    visibility: Duration,
) -> EmbeddedBus {
    let bus = EmbeddedBus::new();
    fleet_bus::scenarios::support::declare_with_dlq(&bus, name, max_receive_count, visibility)
        .await;
    bus
}

/// Waits (on the paused clock) until `done` holds, checking every 50 ms.
pub async fn wait_for<F, Fut>(limit: Duration, done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    fleet_bus::scenarios::support::wait_for(limit, Duration::from_millis(50), done).await;
}

pub fn spawn(consumer: Consumer) -> Running {
    Running::start(consumer)
}
