//! Fleet's workers and the `fleet` command's building blocks.

pub mod analytics;
pub mod aws_calls;
pub mod cli;
pub mod cost;
pub mod demo;
pub mod deploy;
pub mod dlq;
pub mod email;
pub mod iam_actions;
pub mod idempotency;
pub mod observe;
pub mod orders;
pub mod run;
pub mod scaling;
pub mod scenario;
pub mod secrets;
pub mod send;
pub mod stats;
pub mod table;
pub mod telemetry;
pub mod terminal;
