//! Fleet's benchmarks: the Criterion benches' shared set-up, and the pieces of `fleet-bench`,
//! the one command that measures Fleet against its baselines and its peers and prints one table
//! (`scripts/bench`; `benches/README.md` says what each row measures).
//!
//! - [`embedded`]: an embedded queue loaded with messages, drained by a `Consumer`, and the two
//!   baselines it is compared with (a bare channel loop, a task spawned per message);
//! - [`latency`]: publish → handler latency at low load, Fleet against spawn-per-message;
//! - [`sqs`]: consumers on the SQS wire against moto, each a process of its own, behind a
//!   [`proxy`] that counts their requests, on a queue a feeder keeps shallow;
//! - [`memory`]: the idle RSS of `fleet run` and the peak RSS of a drain;
//! - [`child`], [`procfs`]: the processes measured, and what `/proc` says of them;
//! - [`table`]: the rows, the goals of issue 14, and the markdown table.

pub mod child;
pub mod embedded;
pub mod latency;
pub mod memory;
pub mod moto;
pub mod procfs;
pub mod proxy;
pub mod run;
pub mod sqs;
pub mod table;

pub use embedded::{drain, loaded_bus};
