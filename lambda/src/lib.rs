//! Fleet's handlers on AWS Lambda: the same `MessageHandler`, `BatchHandler` and `Router` the
//! engine runs under `fleet run`, driven by an SQS event source mapping with
//! `ReportBatchItemFailures`.
//!
//! - [`SqsAdapter`]: an invocation's records as the engine's `Delivery`s (attempt from
//!   `ApproximateReceiveCount`), one [`RecordOutcome`] each: transient failures in
//!   `batchItemFailures`, permanent ones (and the last attempt) dead-lettered here with the
//!   engine's reason attribute, FIFO groups held back at their first failure;
//! - [`Environment`]: what an execution environment builds once and reuses (configuration,
//!   clients, the worker, secrets with their TTL cache), and [`serve`] on the Runtime API;
//! - [`emf`]: each invocation's outcome counts as CloudWatch metrics (the embedded metric
//!   format: one log line);
//! - the `fleet-lambda` binary (`cargo lambda build -p fleet-lambda`), the worker chosen by
//!   `FLEET_LAMBDA_WORKER`.

mod adapter;
pub mod emf;
mod environment;
mod error;
mod outcome;
pub mod record;
mod run;
mod settle;

pub use adapter::SqsAdapter;
pub use environment::{CONFIG_VAR, Environment, WORKER_VAR, serve};
pub use error::LambdaError;
pub use outcome::{BatchOutcome, RecordOutcome};
