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

pub use check::{Checked, Confirmations, check};
pub use report::DemoReport;

/// The deployment topology, compiled in so the demo runs from any directory.
pub const TOPOLOGY: &str = include_str!("../../../deploy/topology.toml");

/// The email templates the demo sends with, compiled in (written to the demo's directory, where
/// the email worker loads them as `fleet run` does).
const TEMPLATES: [(&str, &str); 3] = [
    (
        "order_confirmation/subject.txt",
        include_str!("../../../deploy/templates/order_confirmation/subject.txt"),
    ),
    (
        "order_confirmation/text.txt",
        include_str!("../../../deploy/templates/order_confirmation/text.txt"),
    ),
    (
        "order_confirmation/html.html",
        include_str!("../../../deploy/templates/order_confirmation/html.html"),
    ),
];

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
    /// The demo's files could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The queues did not drain in time.
    #[error("the queues did not drain within {0:?}")]
    Timeout(Duration),
}

/// The demo's settings: `fleet run`'s defaults with quick retries (the embedded transport runs
/// on the real clock; an event that arrives before its order waits a few milliseconds, not
/// seconds).
fn demo_config(dir: &std::path::Path) -> FleetConfig {
    let mut config: FleetConfig = toml::from_str("").expect("the defaults parse");
    // The file mailer: every email the worker sends is a JSON line in the demo's directory.
    config.email.mailer = crate::run::config::MailerKind::Memory;
    config.email.memory_file = Some(dir.join("sent-emails.jsonl"));
    config.email.templates = dir.join("templates");
    config.email.rate_per_second = 2_000.0;
    config.email.burst = 50;
    config.email.sends_in_flight = 8;
    for consumer in [
        &mut config.orders.consumer,
        &mut config.analytics.consumer,
        &mut config.email.consumer,
    ] {
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
    let dir = demo_dir()?;
    let config = demo_config(&dir);
    let workers = [WorkerKind::Orders, WorkerKind::Analytics, WorkerKind::Email];
    let fleet = Fleet::start(&backends, &config, &workers).await?;

    let scenario = Scenario::generate(
        options.seed,
        options.orders,
        options.events,
        options.duplicates,
    );
    publish(&backends, &config, &scenario).await?;
    let queues = [
        config.orders.queue.clone(),
        config.analytics.queue.clone(),
        config.email.queue.clone(),
    ];
    wait_until_drained(&bus, &queues, options.timeout).await?;
    let summary = Summary(fleet.drain().await);

    let Stores::Memory(stores) = &backends.stores else {
        unreachable!("the embedded backends keep their stores in memory");
    };
    let email_dead = dead_letters(&bus, &topology, &config.email.queue).await?;
    let dead_letters = dead_letters(&bus, &topology, &config.orders.queue).await?;
    let left_for_email = drain(&bus, &config.email.queue).await?;
    let sent = sent_emails(config.email.memory_file.as_deref())?;
    let mut checked = check::check(
        &scenario,
        &stores.orders.snapshot(),
        &stores.counters.snapshot(),
        &dead_letters,
        &Confirmations::Sent(sent.iter().map(|s| s.event_id.clone()).collect()),
    );
    for m in left_for_email.iter().chain(&email_dead) {
        checked
            .lost
            .push(format!("email request {} was not sent", m.id));
    }
    Ok(DemoReport {
        scenario,
        summary,
        checked,
        orders: stores.orders.snapshot(),
        counters: stores.counters.snapshot(),
        emails: sent,
        emails_file: config.email.memory_file.clone().unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

/// A fresh directory for the demo's files (the templates, the sent emails).
fn demo_dir() -> Result<std::path::PathBuf, DemoError> {
    let dir = std::env::temp_dir().join(format!("fleet-demo-{}", std::process::id()));
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| DemoError::Io { path, source }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    for (file, text) in TEMPLATES {
        let path = dir.join("templates").join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(dir)
}

/// One line of the file mailer's file.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SentEmail {
    /// The `email.requested` id.
    pub event_id: String,
    /// The template.
    pub template: Option<String>,
    /// The recipient, masked.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The mailer's id for it.
    pub provider_id: String,
}

fn sent_emails(file: Option<&std::path::Path>) -> Result<Vec<SentEmail>, DemoError> {
    let Some(path) = file else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(DemoError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
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
