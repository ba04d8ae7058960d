//! A process that drains an embedded backlog with Fleet's consumer at its defaults, for its
//! peak resident set: it loads `-n` messages into an embedded queue, says `ready`, drains them
//! on `go`, and prints its counts as JSON (`fleet_benches::child` describes the protocol).

use clap::Parser;
use fleet_benches::child::{ready_then_wait_for_go, report};
use fleet_benches::embedded::fleet_consumer;

#[derive(Parser)]
struct Args {
    /// Messages in the backlog.
    #[arg(short)]
    n: usize,
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    ready_then_wait_for_go()?;
    let (throughput, outcome) = runtime.block_on(fleet_consumer(args.n))?;
    report(&serde_json::json!({
        "received": outcome.received,
        "handled": outcome.acked,
        "elapsed_ms": throughput.elapsed.as_millis() as u64,
        "balanced": outcome.is_balanced(),
    }))
}
