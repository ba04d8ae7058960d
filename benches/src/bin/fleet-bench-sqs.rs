//! Fleet's consumer on SQS at `ConsumerConfig::default()` with a no-op handler, as `fleet-bench`
//! measures it: it builds its client, says `ready`, consumes on `go` until it has handled `-n`
//! messages, shuts down gracefully (every delete flushed) and prints its counts as JSON
//! (`fleet_benches::child` describes the protocol).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_sqs::config::{Credentials, Region};
use clap::Parser;
use fleet_benches::child::{ready_then_wait_for_go, report};
use fleet_bus::Consumer;
use fleet_bus::aws::SqsTransport;
use fleet_bus::consumer::{Delivery, handler_fn};
use tokio::sync::Notify;

#[derive(Parser)]
struct Args {
    /// The SQS endpoint (the counting proxy).
    #[arg(long)]
    endpoint: String,
    /// The queue's name.
    #[arg(long)]
    queue: String,
    /// Stop after handling this many messages.
    #[arg(short)]
    n: u64,
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    // The SDK configuration `fleet run` builds (its timeouts), pointed at the proxy.
    let transport = runtime.block_on(async {
        let config = fleet_bus::aws::config_loader()
            .endpoint_url(&args.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "fleet-bench",
                "fleet-bench",
                None,
                None,
                "fleet-bench",
            ))
            .load()
            .await;
        SqsTransport::new(&config)
    });
    ready_then_wait_for_go()?;
    let (handled, outcome) = runtime.block_on(consume(transport, &args.queue, args.n))?;
    report(&serde_json::json!({
        "received": outcome.received,
        "handled": outcome.acked,
        "handler_calls": handled,
        "balanced": outcome.is_balanced(),
    }))
}

async fn consume(
    transport: SqsTransport,
    queue: &str,
    n: u64,
) -> anyhow::Result<(u64, fleet_bus::ShutdownReport)> {
    let handled = Arc::new(AtomicU64::new(0));
    let all_handled = Arc::new(Notify::new());
    let handler = {
        let handled = handled.clone();
        let all_handled = all_handled.clone();
        handler_fn(move |_d: Delivery| {
            let handled = handled.clone();
            let all_handled = all_handled.clone();
            async move {
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_handled.notify_one();
                }
                Ok(())
            }
        })
    };
    let consumer = Consumer::new(transport, queue)
        .handler(handler)
        .start()
        .await?;
    all_handled.notified().await;
    let report = consumer.shutdown().await?;
    Ok((handled.load(Ordering::Relaxed), report))
}
