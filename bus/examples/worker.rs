//! A complete worker on the embedded transport: declare a queue with its dead-letter queue, send a
//! few messages, consume them until Ctrl-C (or until they are done), and print the report.
//!
//! Run: `cargo run -p fleet-bus --example worker`

use fleet_bus::consumer::{Consumer, Delivery, HandlerError, handler_fn};
use fleet_bus::{OutgoingMessage, QueueDecl, Topology, embedded::EmbeddedBus};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![QueueDecl::new("greetings").dead_letter("greetings-dlq", 3)],
        topics: vec![],
    })
    .await?;
    let queue = fleet_bus::Transport::queue(&bus, "greetings").await?;
    for name in ["Ada", "Grace", "", "Linus"] {
        queue.sender().send(OutgoingMessage::new(name)).await?;
    }
    let handler = handler_fn(|d: Delivery| async move {
        match d.message.body.as_str() {
            "" => Err(HandlerError::permanent("a greeting needs a name").with_label("empty_name")),
            name => {
                println!(
                    "hello, {name} (attempt {} of {})",
                    d.attempt, d.max_attempts
                );
                Ok(())
            }
        }
    });
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {} }
        stop.cancel();
    });
    let report = Consumer::new(bus, "greetings")
        .handler(handler)
        .run(shutdown)
        .await?;
    println!("{report}");
    Ok(())
}
