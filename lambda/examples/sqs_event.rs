//! A Fleet handler answering one SQS event as Lambda delivers it, without Lambda and without
//! AWS: the adapter runs on the embedded transport, reads `sqs_event.json` (or the file named
//! on the command line), prints each record's outcome, the partial batch response the event
//! source mapping would get, and the dead letters with their reasons.
//!
//! Run: `cargo run -p fleet-lambda --example sqs_event [event.json]`.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{ConsumerConfig, Delivery, HandlerError, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{QueueDecl, ReceiveRequest, Topology, Transport};
use fleet_lambda::SqsAdapter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![QueueDecl::new("greetings").dead_letter("greetings-dlq", 3)],
        ..Default::default()
    })
    .await?;

    // The same handler `fleet run` would run: its error's kind decides the outcome.
    let handler = handler_fn(|d: Delivery| async move {
        let body = d.message.body.as_str();
        if let Some(name) = body.strip_prefix("later:") {
            let why = format!("{name} is not in yet");
            return Err(HandlerError::transient(why).with_label("not_yet"));
        }
        if !body.chars().all(char::is_alphabetic) {
            let why = format!("{body:?} is not a name");
            return Err(HandlerError::permanent(why).with_label("not_a_name"));
        }
        println!(
            "hello, {body} (attempt {} of {})",
            d.attempt, d.max_attempts
        );
        Ok(())
    });
    let config = ConsumerConfig {
        handler_name: "greeter".into(),
        ..ConsumerConfig::default()
    };
    // Built once per execution environment; `handle` runs once per invocation.
    let adapter = SqsAdapter::start(&bus, "greetings", handler, &config).await?;

    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sqs_event.json").to_owned()
    });
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let outcome = adapter.handle(event, deadline).await?;
    for (id, record) in &outcome.records {
        println!("{id}: {record:?}");
    }
    println!("{outcome}");
    println!("{}", serde_json::to_string(&outcome.response())?);

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
