//! An embedded bus with a queue redriving into its dead-letter queue, over fleet-bus's shared
//! test support.

use std::time::Duration;

use fleet_bus::embedded::EmbeddedBus;
#[allow(unused_imports)] // each test file uses a different part
pub use fleet_bus::scenarios::support::{
    Running, counts, dlq_name, peek_all, send_all, spawn, wait_drained, wait_until as wait_for,
};

/// A bus with `name` redriving into `name-dlq` after `max_receive_count` receives.
pub async fn bus_with_queue(name: &str, max_receive_count: u32) -> EmbeddedBus {
    fleet_bus::scenarios::support::embedded_with_queue(
        name,
        max_receive_count,
        Duration::from_secs(30),
    )
    .await
}
