//! Fleet's workers and the `fleet` command's building blocks.

pub mod cli;
pub mod demo;
pub mod dlq;
pub mod orders;
pub mod send;
pub mod stats;
pub mod telemetry;
pub mod terminal;
