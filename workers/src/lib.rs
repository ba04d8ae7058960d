//! Fleet's workers and the `fleet` command's building blocks.

pub mod demo;
pub mod telemetry;
