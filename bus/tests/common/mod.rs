//! The consumer tests' set-up on the embedded transport: the shared test support, with the
//! embedded bus as the transport.
#![allow(unused_imports)] // each test file uses a different part

pub use fleet_bus::scenarios::support::{
    Running, counts, dlq_name, embedded_with_queue as bus_with_queue, peek_all, send_all, spawn,
    wait_drained, wait_until as wait_for,
};

pub mod faults;
pub mod runs;
