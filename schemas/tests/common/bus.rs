//! An embedded bus with a queue redriving into its dead-letter queue, over fleet-bus's shared
//! test support.

use std::future::Future;
use std::time::Duration;

use fleet_bus::Consumer;
use fleet_bus::embedded::EmbeddedBus;
#[allow(unused_imports)] // each test file uses a different part
pub use fleet_bus::scenarios::support::{
    Running, counts, dlq_name, peek_all, send_all, wait_drained,
};

/// A bus with `name` redriving into `name-dlq` after `max_receive_count` receives.
pub async fn bus_with_queue(name: &str, max_receive_count: u32) -> EmbeddedBus {
    let bus = EmbeddedBus::new();
    fleet_bus::scenarios::support::declare_with_dlq(
        &bus,
        name,
        max_receive_count,
        Duration::from_secs(30),
    )
    .await;
    bus
}

/// Waits (on the test's clock) until `done` holds, checking every 50 ms, for at most `limit`.
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
