//! A complete worker on the embedded transport: declare a queue with its dead-letter queue, send a
//! few names (and one thing that is not a name), consume them until they are done (or Ctrl-C),
//! print the report, and show the dead letter with its reason.
//!
//! Run: `cargo run -p fleet-bus --example worker`. The README's "consumer engine in 20 lines" is
//! the block between the `README` markers, verbatim (a test checks it).

use std::time::Duration;

use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Consumer, Delivery, HandlerError, handler_fn};
use fleet_bus::{OutgoingMessage, QueueDecl, ReceiveRequest, Topology, Transport};
use fleet_bus::{QueueHandle, embedded::EmbeddedBus};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![QueueDecl::new("greetings").dead_letter("greetings-dlq", 3)],
        topics: vec![],
        ..Default::default()
    })
    .await?;
    let queue = bus.queue("greetings").await?;
    for name in ["Ada", "Grace", "R2-D2", "Linus"] {
        queue.sender().send(OutgoingMessage::new(name)).await?;
    }
    let shutdown = stop_when_done(queue, CancellationToken::new());

    // README begin
    let handler = handler_fn(|d: Delivery| async move {
        let name = d.message.body.as_str();
        if !name.chars().all(char::is_alphabetic) {
            // Permanent: no retry can fix it, so it goes to the dead-letter queue with this reason.
            let why = format!("{name:?} is not a name");
            return Err(HandlerError::permanent(why).with_label("not_a_name"));
        }
        println!(
            "hello, {name} (attempt {} of {})",
            d.attempt, d.max_attempts
        );
        Ok(())
    });
    let report = Consumer::new(bus.clone(), "greetings")
        .handler(handler)
        .run(shutdown)
        .await?;
    println!("{report}");
    // README end

    let dead = bus.queue("greetings-dlq").await?.queue();
    for m in dead
        .receive(&ReceiveRequest::new(10, Duration::ZERO))
        .await?
    {
        if let Some(r) = DeadLetterReason::from_message(&m) {
            println!("dead letter {:?}: {} ({})", m.body, r.kind, r.message);
        }
    }
    Ok(())
}

/// Cancels `token` on Ctrl-C, or once the queue has nothing left to deliver.
fn stop_when_done(queue: QueueHandle, token: CancellationToken) -> CancellationToken {
    let stop = token.clone();
    tokio::spawn(async move {
        let drained = async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match queue.admin().describe().await {
                    Ok(d) if d.counts.visible + d.counts.in_flight + d.counts.delayed == 0 => break,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("cannot read the queue: {e}");
                        break;
                    }
                }
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = drained => {} }
        stop.cancel();
    });
    token
}
