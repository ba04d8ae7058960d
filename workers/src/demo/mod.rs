//! `fleet demo`: the real orders and analytics workers, run as `fleet run` runs them, on the
//! embedded transport with in-memory stores. A seeded scenario of order events (duplicates,
//! shuffled arrival, a few impossible transitions) is published to the topic of
//! `deploy/topology.toml`; the fan-out delivers it to the workers; at the end the orders,
//! counters, dead letters and confirmations are checked against the scenario's model, computed
//! from its stories alone: "lost 0, double-applied 0".

mod check;
mod report;

use std::time::{Duration, Instant};

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::producer::BatchProducer;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{BusError, Topology, Transport};
use fleet_schemas::Producer;

use crate::run::config::{FleetConfig, WorkerKind};
use crate::run::{Backends, Fleet, Stores, Summary};
use crate::scenario::Scenario;

pub use check::Checked;
pub use report::DemoReport;

/// The deployment topology, compiled in so the demo runs from any directory.
pub const TOPOLOGY: &str = include_str!("../../../deploy/topology.toml");

/// What the demo publishes.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Orders in the scenario.
    pub orders: usize,
    /// Events published, duplicates included.
    pub events: usize,
    /// The fraction of publishes that repeat an earlier event.
    pub duplicates: f64,
    /// The scenario's seed.
    pub seed: u64,
    /// Longest the demo waits for the queues to drain.
    pub timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            orders: 200,
            events: 1000,
            duplicates: 0.1,
            seed: 2026,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Everything that can stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The bus refused something.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// An event did not serialize.
    #[error(transparent)]
    Schema(#[from] fleet_schemas::SchemaError),
    /// The queues did not drain in time.
    #[error("the queues did not drain within {0:?}")]
    Timeout(Duration),
}

/// The demo's settings: `fleet run`'s defaults with quick retries (the embedded transport runs
/// on the real clock; an event that arrives before its order waits a few milliseconds, not
/// seconds).
fn demo_config() -> FleetConfig {
    let mut config: FleetConfig = toml::from_str("").expect("the defaults parse");
    for consumer in [&mut config.orders.consumer, &mut config.analytics.consumer] {
        consumer.wait_time = Duration::from_secs(1);
        consumer.flush_interval = Duration::from_millis(10);
        consumer.retry = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            jitter: Jitter::Equal,
        };
    }
    config.shutdown_timeout = Duration::from_secs(5);
    config
}

/// Runs the demo.
///
/// # Errors
/// When the bus refuses something (a bug, on the embedded transport) or the queues do not drain.
pub async fn run(options: DemoOptions) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let topology = Topology::from_toml(TOPOLOGY)?;
    let (backends, bus) = Backends::embedded(&topology).await?;
    let config = demo_config();
    let workers = [WorkerKind::Orders, WorkerKind::Analytics];
    let fleet = Fleet::start(&backends, &config, &workers).await?;

    let scenario = Scenario::generate(
        options.seed,
        options.orders,
        options.events,
        options.duplicates,
    );
    publish(&backends, &config, &scenario).await?;
    let queues = [config.orders.queue.clone(), config.analytics.queue.clone()];
    wait_until_drained(&bus, &queues, options.timeout).await?;
    let summary = Summary(fleet.drain().await);

    let Stores::Memory(stores) = &backends.stores else {
        unreachable!("the embedded backends keep their stores in memory");
    };
    let dead_letters = dead_letters(&bus, &topology, &config.orders.queue).await?;
    let confirmations = drain(&bus, "fleet-email").await?;
    let checked = check::check(
        &scenario,
        &stores.orders.snapshot(),
        &stores.counters.snapshot(),
        &dead_letters,
        &confirmations,
    );
    Ok(DemoReport {
        scenario,
        summary,
        checked,
        orders: stores.orders.snapshot(),
        counters: stores.counters.snapshot(),
        elapsed: started.elapsed(),
    })
}

async fn publish(
    backends: &Backends,
    config: &FleetConfig,
    scenario: &Scenario,
) -> Result<(), DemoError> {
    let topic = backends.transport.topic(&config.events_topic).await?;
    let sender = BatchProducer::to_topic(&config.events_topic, topic);
    let producer = Producer::new(sender.clone(), crate::scenario::PRODUCER);
    let mut messages = Vec::with_capacity(scenario.publish.len());
    for &i in &scenario.publish {
        messages.push(producer.message_for(&scenario.events[i].envelope)?);
    }
    let report = sender.send_all(messages, |_| {}).await;
    if let Some((_, e)) = report.failed.first() {
        return Err(BusError::Internal(format!("a publish failed: {e:?}")).into());
    }
    Ok(())
}

/// Waits until nothing is visible, in flight or delayed on `queues`, three looks in a row.
async fn wait_until_drained(
    bus: &EmbeddedBus,
    queues: &[String],
    limit: Duration,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let mut quiet = 0;
    while quiet < 3 {
        if started.elapsed() > limit {
            return Err(DemoError::Timeout(limit));
        }
        let mut busy = 0;
        for q in queues {
            let c = bus.queue(q).await?.admin().describe().await?.counts;
            busy += c.visible + c.in_flight + c.delayed;
        }
        quiet = if busy == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Every message left on a queue.
async fn drain(bus: &EmbeddedBus, queue: &str) -> Result<Vec<fleet_bus::Message>, DemoError> {
    let handle = bus.queue(queue).await?;
    let mut out = Vec::new();
    loop {
        let batch = handle
            .queue()
            .receive(&fleet_bus::ReceiveRequest::new(10, Duration::ZERO))
            .await?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(batch);
    }
}

async fn dead_letters(
    bus: &EmbeddedBus,
    topology: &Topology,
    queue: &str,
) -> Result<Vec<fleet_bus::Message>, DemoError> {
    let dlq = topology
        .queue(queue)
        .and_then(|q| q.dead_letter.as_ref())
        .map(|d| d.queue.clone())
        .ok_or_else(|| BusError::Config(format!("queue {queue} has no dead-letter queue")))?;
    drain(bus, &dlq).await
}
