//! `fleet demo`: the whole fleet end to end on the embedded transport. Synthetic events are
//! published to the topic of `deploy/topology.toml`, fanned out to the worker queues by their
//! filter policies, and consumed by the engine; a few fail once and are retried, one is poison and
//! is dead-lettered. The summary accounts for every delivery: nothing may be lost.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{AttributeValue, Consumer, OutgoingMessage, ShutdownReport, Topology, Transport};
use tokio_util::sync::CancellationToken;

/// The deployment topology, compiled in so the demo runs from any directory.
pub const TOPOLOGY: &str = include_str!("../../deploy/topology.toml");

const EVENT_TYPES: [&str; 8] = [
    "order.placed",
    "analytics.page_view",
    "order.paid",
    "email.requested",
    "analytics.signup",
    "order.shipped",
    "email.requested",
    "order.cancelled",
];

/// What the demo publishes.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Events to publish.
    pub events: usize,
    /// Every n-th event fails once (transiently) in each queue it reaches.
    pub flaky_every: usize,
    /// Longest the demo waits for the queues to drain.
    pub timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            events: 300,
            flaky_every: 25,
            timeout: Duration::from_secs(60),
        }
    }
}

/// How one queue fared.
#[derive(Clone, Debug, Default)]
pub struct QueueSummary {
    /// The queue.
    pub name: String,
    /// Its dead-letter queue.
    pub dead_letter_queue: String,
    /// Events its subscription's filter policy lets through.
    pub expected: usize,
    /// Events its handler processed.
    pub processed: usize,
    /// Events found in its dead-letter queue, with their reasons.
    pub dead_letters: Vec<(String, DeadLetterReason)>,
    /// Expected events neither processed nor dead-lettered.
    pub lost: usize,
    /// Events that arrived although the filter should have kept them out.
    pub unexpected: usize,
    /// The consumer's own accounting.
    pub report: ShutdownReport,
}

/// The demo's result.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    /// Events published.
    pub published: usize,
    /// Events made to fail once.
    pub flaky: usize,
    /// Per queue.
    pub queues: Vec<QueueSummary>,
}

impl DemoSummary {
    /// Deliveries lost across all queues.
    pub fn lost(&self) -> usize {
        self.queues.iter().map(|q| q.lost + q.unexpected).sum()
    }
}

/// Everything that can stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The bus refused something.
    #[error(transparent)]
    Bus(#[from] fleet_bus::BusError),
}

fn event(i: usize, flaky: bool) -> OutgoingMessage {
    let kind = EVENT_TYPES[i % EVENT_TYPES.len()];
    let id = format!("evt-{i:05}");
    let body =
        serde_json::json!({ "id": id, "type": kind, "amount": (i * 7) % 300, "flaky": flaky });
    OutgoingMessage::new(body.to_string())
        .attribute("type", AttributeValue::string(kind))
        .attribute("event_id", AttributeValue::string(&id))
}

fn poison() -> OutgoingMessage {
    // Truncated JSON: no retry will ever parse it.
    OutgoingMessage::new("{\"id\": \"evt-poison\", \"type\": \"order.placed\", \"amount\": ")
        .attribute("type", AttributeValue::string("order.placed"))
        .attribute("event_id", AttributeValue::string("evt-poison"))
}

type Seen = Arc<Mutex<BTreeSet<String>>>;

/// The demo workers' handler: parse, validate, fail once when told to.
fn worker(seen: Seen) -> fleet_bus::consumer::MessageHandler {
    handler_fn(move |d: Delivery| {
        let seen = seen.clone();
        async move {
            let payload = d
                .payload()
                .map_err(|e| HandlerError::permanent(e).with_label("bad_envelope"))?;
            let v: serde_json::Value = serde_json::from_str(&payload.body)
                .map_err(|e| HandlerError::permanent(e).with_label("invalid_json"))?;
            let id = v
                .get("id")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    HandlerError::permanent("field `id` is missing").with_label("missing_field")
                })?;
            if v.get("flaky") == Some(&serde_json::Value::Bool(true)) && d.attempt == 1 {
                return Err(
                    HandlerError::transient("simulated outage of a downstream service")
                        .with_label("downstream_unavailable"),
                );
            }
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.to_owned());
            Ok(())
        }
    })
}

/// Runs the demo.
///
/// # Errors
/// When the topology or the bus refuses something (a bug, on the embedded transport).
pub async fn run(options: DemoOptions) -> Result<DemoSummary, DemoError> {
    let topology = Topology::from_toml(TOPOLOGY)?;
    let bus = EmbeddedBus::new();
    bus.provision(&topology).await?;
    let topic_decl = &topology.topics[0];
    let topic = bus.topic(&topic_decl.name).await?;

    let mut messages: Vec<OutgoingMessage> = (0..options.events)
        .map(|i| event(i, options.flaky_every > 0 && i % options.flaky_every == 7))
        .collect();
    messages.insert(options.events / 2, poison());
    for chunk in messages.chunks(10) {
        for (m, r) in chunk.iter().zip(topic.publish_batch(chunk).await?) {
            r.map_err(|e| fleet_bus::BusError::Config(format!("publish refused {}: {e}", m.body)))?;
        }
    }

    let shutdown = CancellationToken::new();
    let mut running = Vec::new();
    for sub in &topic_decl.subscriptions {
        let seen: Seen = Arc::default();
        let consumer = Consumer::new(bus.clone(), &sub.queue)
            .handler(worker(seen.clone()))
            .configure(|c| {
                c.wait_time = Duration::from_secs(1);
                c.flush_interval = Duration::from_millis(20);
                c.retry = RetryPolicy {
                    base: Duration::from_millis(200),
                    max: Duration::from_secs(2),
                    jitter: Jitter::Equal,
                };
                c.handler_name = format!("demo-{}", sub.queue);
            });
        running.push((
            sub,
            seen,
            tokio::spawn(consumer.run(shutdown.child_token())),
        ));
    }
    wait_until_drained(
        &bus,
        &topic_decl
            .subscriptions
            .iter()
            .map(|s| s.queue.clone())
            .collect::<Vec<_>>(),
        options.timeout,
    )
    .await?;
    shutdown.cancel();

    let mut summary = DemoSummary {
        published: messages.len(),
        flaky: messages
            .iter()
            .filter(|m| m.body.contains("\"flaky\":true"))
            .count(),
        queues: Vec::new(),
    };
    for (sub, seen, handle) in running {
        let report = handle
            .await
            .map_err(|e| fleet_bus::BusError::Config(e.to_string()))??;
        let filter = sub.parsed_filter()?;
        let expected: BTreeSet<String> = messages
            .iter()
            .filter(|m| {
                filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&m.attributes, &m.body))
            })
            .filter_map(|m| {
                m.attributes
                    .get("event_id")
                    .and_then(AttributeValue::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let processed = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let queue = bus.queue(&sub.queue).await?;
        let dlq_name = queue
            .admin()
            .describe()
            .await?
            .redrive
            .map(|r| r.dead_letter_queue_name().to_owned())
            .unwrap_or_default();
        let dead_letters = dead_letters(&bus, &dlq_name).await?;
        let observed: BTreeSet<String> = processed
            .iter()
            .cloned()
            .chain(dead_letters.iter().map(|(id, _)| id.clone()))
            .collect();
        summary.queues.push(QueueSummary {
            name: sub.queue.clone(),
            dead_letter_queue: dlq_name.clone(),
            expected: expected.len(),
            processed: processed.len(),
            lost: expected.difference(&observed).count(),
            unexpected: observed.difference(&expected).count(),
            dead_letters,
            report,
        });
    }
    Ok(summary)
}

async fn wait_until_drained(
    bus: &EmbeddedBus,
    queues: &[String],
    timeout: Duration,
) -> Result<(), DemoError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut busy = false;
        for q in queues {
            let c = bus.queue(q).await?.admin().describe().await?.counts;
            busy |= c.visible + c.in_flight + c.delayed > 0;
        }
        if !busy || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The event ids and reasons in a dead-letter queue (left in place).
async fn dead_letters(
    bus: &EmbeddedBus,
    dlq: &str,
) -> Result<Vec<(String, DeadLetterReason)>, DemoError> {
    let letters = crate::dlq::inspect(bus, dlq, usize::MAX, Duration::from_secs(60)).await?;
    Ok(letters
        .into_iter()
        .map(|d| {
            let id = d
                .message
                .attributes
                .get("event_id")
                .and_then(AttributeValue::as_str)
                .unwrap_or("?")
                .to_owned();
            let reason = d.reason.unwrap_or(DeadLetterReason {
                kind: "unknown".into(),
                message: "no reason attributes".into(),
                attempt: 0,
                handler: String::new(),
                queue: String::new(),
                message_id: String::new(),
            });
            (id, reason)
        })
        .collect())
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
        writeln!(
            f,
            "Fleet demo on the embedded transport (topology: deploy/topology.toml)"
        )?;
        writeln!(f, "topic fleet-events -> {}", names.join(", "))?;
        writeln!(f)?;
        writeln!(
            f,
            "published      {} events ({} fail once, 1 poison)",
            self.published, self.flaky
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<18}{:>10}{:>11}{:>9}{:>15}{:>6}",
            "queue", "delivered", "processed", "retried", "dead-lettered", "lost"
        )?;
        for q in &self.queues {
            writeln!(
                f,
                "{:<18}{:>10}{:>11}{:>9}{:>15}{:>6}",
                q.name,
                q.expected,
                q.processed,
                q.report.retried,
                q.dead_letters.len(),
                q.lost + q.unexpected
            )?;
        }
        writeln!(f)?;
        for q in &self.queues {
            for (id, r) in &q.dead_letters {
                writeln!(
                    f,
                    "dead letter    {}  {id}  {} (attempt {}): {}",
                    q.dead_letter_queue, r.kind, r.attempt, r.message
                )?;
            }
        }
        let processed: usize = self.queues.iter().map(|q| q.processed).sum();
        let retried: u64 = self.queues.iter().map(|q| q.report.retried).sum();
        let dead: usize = self.queues.iter().map(|q| q.dead_letters.len()).sum();
        writeln!(f)?;
        write!(
            f,
            "published {} | processed {processed} | retried {retried} | dead-lettered {dead} | lost {}",
            self.published,
            self.lost()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_demo_loses_nothing() {
        let summary = run(DemoOptions {
            events: 120,
            flaky_every: 10,
            timeout: Duration::from_secs(60),
        })
        .await
        .expect("demo runs");
        assert_eq!(summary.lost(), 0, "{summary}");
        let total_dead: usize = summary.queues.iter().map(|q| q.dead_letters.len()).sum();
        assert_eq!(
            total_dead, 2,
            "the poison event reaches orders and analytics: {summary}"
        );
        assert!(summary.queues.iter().all(|q| q.report.is_balanced()));
        assert!(summary.queues.iter().map(|q| q.report.retried).sum::<u64>() > 0);
        for q in &summary.queues {
            for (id, r) in &q.dead_letters {
                assert_eq!(
                    (id.as_str(), r.kind.as_str()),
                    ("evt-poison", "invalid_json")
                );
            }
        }
    }
}
