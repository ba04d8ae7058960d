//! The consumer tests' set-up on the embedded transport: the shared test support, with the
//! embedded bus as the transport.
#![allow(unused_imports)] // each test file uses a different part

pub use fleet_bus::scenarios::support::{
    Running, counts, dlq_name, embedded_with_queue as bus_with_queue, peek_all, send_all, spawn,
    wait_drained, wait_until as wait_for,
};

pub mod faults;
pub mod runs;

/// A retry policy without jitter: `base` seconds, doubling up to an hour.
#[allow(dead_code)]
pub fn no_jitter(base: u64) -> fleet_bus::retry::RetryPolicy {
    fleet_bus::retry::RetryPolicy {
        base: std::time::Duration::from_secs(base),
        max: std::time::Duration::from_secs(3600),
        jitter: fleet_bus::retry::Jitter::None,
    }
}

/// `n` messages with the bodies `m0`, `m1`, ...
#[allow(dead_code)]
pub fn numbered(n: usize) -> Vec<fleet_bus::OutgoingMessage> {
    (0..n)
        .map(|i| fleet_bus::OutgoingMessage::new(format!("m{i}")))
        .collect()
}
