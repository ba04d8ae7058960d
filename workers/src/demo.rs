//! `fleet demo`: the whole fleet end to end on the embedded transport. Synthetic events are
//! published to the topic of `deploy/topology.toml`, fanned out to the worker queues by their
//! filter policies, and consumed by the engine; a few fail once and are retried, one is poison and
//! is dead-lettered. The summary accounts for every delivery against the demo's own table of the
//! event types each queue subscribes to (`demo/plan.rs`), not against the filter matcher that
//! routed them: nothing may be lost, and nothing may arrive where it does not belong.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{
    AttributeValue, BusError, Consumer, OutgoingMessage, ShutdownReport, Topology, Transport,
};
use tokio_util::sync::CancellationToken;

mod plan;
mod summary;

pub use summary::{DemoSummary, QueueSummary};

use plan::{Event, SUBSCRIBED, expected_at, plan};

/// The deployment topology, compiled in so the demo runs from any directory.
pub const TOPOLOGY: &str = include_str!("../../deploy/topology.toml");

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

/// Everything that can stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The bus refused something.
    #[error(transparent)]
    Bus(#[from] fleet_bus::BusError),
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
    run_on(TOPOLOGY, options).await
}

/// Runs the demo on another topology (a routing mistake must show as lost or unexpected).
///
/// # Errors
/// As [`run`].
pub async fn run_on(topology: &str, options: DemoOptions) -> Result<DemoSummary, DemoError> {
    let topology = Topology::from_toml(topology)?;
    let bus = EmbeddedBus::new();
    bus.provision(&topology).await?;
    let topic = topology
        .topics
        .first()
        .ok_or_else(|| BusError::Topology("the demo needs a topic to publish to".to_owned()))?;
    let events = plan(options);
    publish(&bus, &topic.name, &events).await?;

    let queues: Vec<String> = topic
        .subscriptions
        .iter()
        .map(|s| s.queue.clone())
        .collect();
    let shutdown = CancellationToken::new();
    let running: Vec<_> = queues
        .iter()
        .map(|queue| {
            let seen = Seen::default();
            let consumer = demo_consumer(&bus, queue, seen.clone());
            (
                queue,
                seen,
                tokio::spawn(consumer.run(shutdown.child_token())),
            )
        })
        .collect();
    wait_until_drained(&bus, &queues, options.timeout).await?;
    shutdown.cancel();

    let mut summary = DemoSummary {
        published: events.len(),
        flaky: events.iter().filter(|e| e.flaky).count(),
        queues: Vec::new(),
    };
    for (queue, seen, handle) in running {
        let report = handle
            .await
            .map_err(|e| BusError::Internal(format!("the consumer of {queue} failed: {e}")))??;
        summary
            .queues
            .push(summarize(&bus, queue, &events, &seen, report).await?);
    }
    // A queue that should get events but is not subscribed at all lost every one of them.
    for (queue, _) in SUBSCRIBED
        .iter()
        .filter(|(q, _)| !queues.iter().any(|n| n == q))
    {
        let expected = expected_at(queue, &events).len();
        summary.queues.push(QueueSummary {
            name: (*queue).to_owned(),
            expected,
            lost: expected,
            ..QueueSummary::default()
        });
    }
    Ok(summary)
}

async fn publish(bus: &EmbeddedBus, topic: &str, events: &[Event]) -> Result<(), DemoError> {
    let topic = bus.topic(topic).await?;
    for chunk in events.chunks(10) {
        let messages: Vec<OutgoingMessage> = chunk.iter().map(|e| e.message.clone()).collect();
        for (e, r) in chunk.iter().zip(topic.publish_batch(&messages).await?) {
            r.map_err(|err| BusError::Internal(format!("publish refused {}: {err}", e.id)))?;
        }
    }
    Ok(())
}

fn demo_consumer(bus: &EmbeddedBus, queue: &str, seen: Seen) -> Consumer {
    Consumer::new(bus.clone(), queue)
        .handler(worker(seen))
        .configure(|c| {
            c.wait_time = Duration::from_secs(1);
            c.flush_interval = Duration::from_millis(20);
            c.retry = RetryPolicy {
                base: Duration::from_millis(200),
                max: Duration::from_secs(2),
                jitter: Jitter::Equal,
            };
            c.handler_name = format!("demo-{queue}");
        })
}

/// What became of the events `queue` should have received: processed, dead-lettered or lost,
/// and what arrived although it should not have.
async fn summarize(
    bus: &EmbeddedBus,
    queue: &str,
    events: &[Event],
    seen: &Seen,
    report: ShutdownReport,
) -> Result<QueueSummary, DemoError> {
    let expected = expected_at(queue, events);
    let processed = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let dlq_name = bus
        .queue(queue)
        .await?
        .admin()
        .describe()
        .await?
        .redrive
        .map(|r| r.dead_letter_queue_name().to_owned())
        .unwrap_or_default();
    let dead_letters = dead_letters(bus, &dlq_name).await?;
    let observed: BTreeSet<String> = processed
        .iter()
        .cloned()
        .chain(dead_letters.iter().map(|(id, _)| id.clone()))
        .collect();
    Ok(QueueSummary {
        name: queue.to_owned(),
        dead_letter_queue: dlq_name,
        expected: expected.len(),
        processed: processed.len(),
        lost: expected.difference(&observed).count(),
        unexpected: observed.difference(&expected).count(),
        dead_letters,
        report,
    })
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
        for q in &summary.queues {
            assert_eq!(
                q.report.received,
                q.report.settled(),
                "{}: {}",
                q.name,
                q.report
            );
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_routing_mistake_shows_as_lost_and_unexpected_deliveries() {
        let orders = r#"filter_policy = { type = [{ prefix = "order." }] }"#;
        let analytics = r#"filter_policy = { type = [{ anything-but = { prefix = "email." } }] }"#;
        assert!(TOPOLOGY.contains(orders) && TOPOLOGY.contains(analytics));
        // fleet-orders misses order.shipped and order.cancelled; fleet-analytics gets email too.
        let wrong = TOPOLOGY
            .replace(
                orders,
                r#"filter_policy = { type = [{ prefix = "order.p" }] }"#,
            )
            .replace(
                analytics,
                r#"filter_policy = { type = [{ exists = true }] }"#,
            );
        let summary = run_on(
            &wrong,
            DemoOptions {
                events: 80,
                flaky_every: 0,
                timeout: Duration::from_secs(60),
            },
        )
        .await
        .expect("demo runs");
        let queue = |name: &str| {
            summary
                .queues
                .iter()
                .find(|q| q.name == name)
                .expect("queue in the summary")
        };
        // Of 80 events, types cycle with period 8: order.shipped at 5, order.cancelled at 7,
        // email.requested at 3 and 6; 10 of each per position.
        assert_eq!(
            (queue("fleet-orders").lost, queue("fleet-orders").unexpected),
            (20, 0)
        );
        assert_eq!(
            (
                queue("fleet-analytics").lost,
                queue("fleet-analytics").unexpected
            ),
            (0, 20)
        );
        assert_eq!(summary.lost(), 40, "{summary}");
    }
}
