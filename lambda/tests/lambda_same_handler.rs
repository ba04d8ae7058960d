//! The same worker code under `fleet run` and on Lambda, against moto: one seeded scenario of
//! shuffled order events (duplicates, events that arrive too early, events that can never
//! apply) published to two deployments alike. On the first, the orders worker runs in the
//! engine's `Consumer`, started as `fleet run` starts it (`fleet_workers::run::Fleet::start`);
//! on the second, the same worker (`worker_for`, `consumer_of`) runs in the adapter
//! (`Environment::build`), fed by an event source mapping played here with the SQS API:
//! receive up to 10, invoke with the records in Lambda's event shape, delete what succeeded,
//! leave the `batchItemFailures` to come back after the queue's (short) visibility timeout.
//!
//! The effects must be equal: the orders in the table (status, paid, refunded, applied event
//! ids), the dead letters (the event ids per reason), the confirmations published; and both
//! must be what the scenario's model says (`fleet_workers::demo::check`).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use base64::Engine;
use fleet_bus::aws::SqsTransport;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use fleet_bus::producer::BatchProducer;
use fleet_bus::{Message, ReceiveRequest, Topology, Transport};
use fleet_lambda::Environment;
use fleet_schemas::Producer;
use fleet_tests::moto;
use fleet_workers::demo::{Confirmations, check};
use fleet_workers::orders::{DynamoOrderStore, LoadedOrder, OrderStore};
use fleet_workers::run::{Backends, Effective, Fleet, WorkerKind};
use fleet_workers::scenario::Scenario;

/// Receives before a dead letter: enough that every event that arrives too early applies on a
/// later attempt, whatever the runtime's backoff.
const MAX_RECEIVES: u32 = 16;
/// How long either runtime may take to empty its queue.
const DRAIN_LIMIT: Duration = Duration::from_secs(240);

/// A topic, the orders queue with its dead-letter queue, the email queue that collects the
/// confirmations, and the orders' table, under unique names; the configuration `fleet run`
/// and the function both read.
struct Deployment {
    prefix: String,
    sdk: SdkConfig,
    transport: SqsTransport,
    effective: Effective,
}

impl Deployment {
    /// `visibility` is the orders queue's visibility timeout: on Lambda, the backoff of a
    /// batch item failure.
    async fn provision(name: &str, visibility: u32) -> Self {
        let prefix = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let topology = topology(&prefix, visibility);
        std::fs::write(dir.join("topology.toml"), &topology).unwrap();
        let config: PathBuf = dir.join("fleet.toml");
        std::fs::write(&config, fleet_toml(&prefix)).unwrap();
        let effective = Effective::load(Some(&config), Vec::new()).unwrap();

        let sdk = moto::sdk_config().await;
        let transport = SqsTransport::new(&sdk);
        let parsed = Topology::from_toml(&topology).unwrap();
        fleet_bus::provision(&transport, &parsed).await.unwrap();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        fleet_bus::aws::table::provision_tables(&dynamodb, &parsed)
            .await
            .unwrap();
        Self {
            prefix,
            sdk,
            transport,
            effective,
        }
    }

    fn orders(&self) -> String {
        format!("{}-orders", self.prefix)
    }

    /// The scenario's events to the topic, in its shuffled order, duplicates included.
    async fn publish(&self, scenario: &Scenario) {
        let name = format!("{}-events", self.prefix);
        let topic = self.transport.topic(&name).await.unwrap();
        let sender = BatchProducer::to_topic(&name, topic);
        let producer = Producer::new(sender.clone(), fleet_workers::scenario::PRODUCER);
        let messages = scenario
            .publish
            .iter()
            .map(|&i| producer.message_for(&scenario.events[i].envelope).unwrap())
            .collect();
        let report = sender.send_all(messages, |_| {}).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }

    /// Nothing visible, in flight or delayed on the orders queue.
    async fn orders_empty(&self) -> bool {
        let c = self
            .transport
            .queue(&self.orders())
            .await
            .unwrap()
            .admin()
            .describe()
            .await
            .unwrap()
            .counts;
        c.visible + c.in_flight + c.delayed == 0
    }

    async fn wait_until_drained(&self) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 3 {
            assert!(
                started.elapsed() < DRAIN_LIMIT,
                "{} not drained",
                self.orders()
            );
            quiet = if self.orders_empty().await {
                quiet + 1
            } else {
                0
            };
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }

    /// Every message in a queue, received once each.
    async fn drain(&self, queue: &str) -> Vec<Message> {
        let q = self.transport.queue(queue).await.unwrap().queue();
        let mut out = Vec::new();
        loop {
            let got = q
                .receive(
                    &ReceiveRequest::new(10, Duration::from_secs(1))
                        .visibility(Duration::from_secs(300)),
                )
                .await
                .unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got);
        }
    }

    /// What the run left behind, and the model's verdict on it.
    async fn effects(&self, scenario: &Scenario) -> Effects {
        let store = DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            format!("{}-table", self.prefix),
        );
        let mut loaded: Vec<LoadedOrder> = Vec::new();
        for o in &scenario.orders {
            loaded.extend(store.load(&o.order_id).await.unwrap());
        }
        let dead = self.drain(&format!("{}-orders-dlq", self.prefix)).await;
        let emails = self.drain(&format!("{}-email", self.prefix)).await;
        let confirmations: Vec<String> = emails.iter().map(|m| envelope_id(m).unwrap()).collect();
        // No analytics worker runs here: its counters are not under test.
        let counters: HashMap<String, i64> = scenario.expected_counters().into_iter().collect();
        let verdict = check(
            scenario,
            &loaded,
            &counters,
            &dead,
            &Confirmations::Published(confirmations.clone()),
        );
        assert!(
            verdict.ok(),
            "{}: lost {:?}\ndouble-applied {:?}\nwrong {:?}",
            self.prefix,
            verdict.lost,
            verdict.double_applied,
            verdict.wrong
        );
        let mut dead_letters: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in &dead {
            let reason = DeadLetterReason::from_message(m)
                .unwrap_or_else(|| panic!("a dead letter without its reason: {m:?}"));
            assert_eq!(
                (reason.handler.as_str(), reason.queue.as_str()),
                ("orders", self.orders().as_str())
            );
            dead_letters
                .entry(reason.kind)
                .or_default()
                .insert(envelope_id(m).unwrap());
        }
        Effects {
            orders: loaded.iter().map(OrderEffect::of).collect(),
            dead_letters,
            confirmations: confirmations.into_iter().collect(),
        }
    }
}

/// What a run changed, comparable across deployments.
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    orders: BTreeMap<String, OrderEffect>,
    dead_letters: BTreeMap<String, BTreeSet<String>>,
    confirmations: BTreeSet<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct OrderEffect {
    status: &'static str,
    paid_cents: u64,
    refunded_cents: u64,
    /// Sorted: events that commute may apply in either order.
    applied: Vec<String>,
}

impl OrderEffect {
    fn of(loaded: &LoadedOrder) -> (String, Self) {
        let order = &loaded.record.order;
        let mut applied = loaded.record.applied.clone();
        applied.sort();
        let effect = OrderEffect {
            status: order.status.as_str(),
            paid_cents: order.paid_cents(),
            refunded_cents: order.refunded_cents,
            applied,
        };
        (order.order_id().to_owned(), effect)
    }
}

fn envelope_id(m: &Message) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&m.body).ok()?;
    Some(v.get("id")?.as_str()?.to_owned())
}

/// The orders worker in the engine's consumer, started as `fleet run` starts its workers.
async fn under_fleet_run(d: &Deployment, scenario: &Scenario) {
    let config = &d.effective.config;
    let backends = Backends::aws(&d.sdk);
    let fleet = Fleet::start(&backends, config, &[WorkerKind::Orders])
        .await
        .unwrap();
    d.publish(scenario).await;
    d.wait_until_drained().await;
    for w in fleet.drain().await {
        w.report.unwrap();
    }
}

/// The same worker in the adapter, fed as an event source mapping feeds a function: batches
/// of up to 10 received from the queue, one invocation each, the successes deleted and the
/// batch item failures left to come back after the visibility timeout.
async fn under_the_adapter(d: &Deployment, scenario: &Scenario) -> usize {
    let environment = Environment::build(WorkerKind::Orders, &d.effective, Backends::aws(&d.sdk))
        .await
        .unwrap();
    d.publish(scenario).await;
    let sqs = aws_sdk_sqs::Client::new(&d.sdk);
    let url = sqs
        .get_queue_url()
        .queue_name(d.orders())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{}", d.orders());
    let started = Instant::now();
    let (mut quiet, mut failures) = (0, 0);
    while quiet < 3 {
        assert!(
            started.elapsed() < DRAIN_LIMIT,
            "{} not drained",
            d.orders()
        );
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        if messages.is_empty() {
            quiet = if d.orders_empty().await { quiet + 1 } else { 0 };
            continue;
        }
        quiet = 0;
        let event = serde_json::json!({
            "Records": messages.iter().map(|m| record_of(m, &arn)).collect::<Vec<_>>()
        });
        let deadline = SystemTime::now() + Duration::from_secs(30);
        let response = environment
            .invoke(serde_json::from_value(event).unwrap(), deadline)
            .await
            .unwrap();
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        failures += failed.len();
        let entries: Vec<_> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap()))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        if !entries.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(deleted.failed().is_empty(), "{:?}", deleted.failed());
        }
    }
    failures
}

/// One received message as a record of the SQS event Lambda delivers.
fn record_of(m: &aws_sdk_sqs::types::Message, arn: &str) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = m
        .attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone().into()))
        .collect();
    let message_attributes: serde_json::Map<String, serde_json::Value> = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let mut a = serde_json::json!({
                "stringListValues": [], "binaryListValues": [], "dataType": v.data_type()
            });
            if let Some(s) = v.string_value() {
                a["stringValue"] = s.into();
            }
            if let Some(b) = v.binary_value() {
                a["binaryValue"] = base64::engine::general_purpose::STANDARD
                    .encode(b.as_ref())
                    .into();
            }
            (k.clone(), a)
        })
        .collect();
    serde_json::json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scenario_ends_the_same_under_fleet_run_and_under_the_adapter() {
    let scenario = Scenario::generate(15, 20, 100, 0.1);
    let engine = Deployment::provision("same-engine", 20).await;
    let lambda = Deployment::provision("same-lambda", 2).await;

    let t = Instant::now();
    under_fleet_run(&engine, &scenario).await;
    println!("under fleet run: {:?}", t.elapsed());
    let t = Instant::now();
    let failures = under_the_adapter(&lambda, &scenario).await;
    println!(
        "under the adapter: {:?}, {failures} batch item failures",
        t.elapsed()
    );

    let under_engine = engine.effects(&scenario).await;
    let under_lambda = lambda.effects(&scenario).await;
    println!(
        "{} orders, dead letters {:?}, {} confirmations",
        under_engine.orders.len(),
        under_engine
            .dead_letters
            .iter()
            .map(|(k, ids)| (k.as_str(), ids.len()))
            .collect::<Vec<_>>(),
        under_engine.confirmations.len()
    );
    assert_eq!(under_engine.orders.len(), scenario.orders.len());
    assert!(
        !under_engine.dead_letters.is_empty(),
        "the scenario has events that can never apply"
    );
    assert!(
        failures > 0,
        "the scenario has events that arrive too early: some come back"
    );
    assert_eq!(under_engine, under_lambda);
}

fn topology(p: &str, visibility: u32) -> String {
    format!(
        r#"
[[topic]]
name = "{p}-events"
[[topic.subscription]]
queue = "{p}-email"
raw_delivery = true
filter_policy = {{ type = ["email.requested"] }}
[[topic.subscription]]
queue = "{p}-orders"
raw_delivery = true
filter_policy = {{ type = [{{ prefix = "order." }}] }}

[[queue]]
name = "{p}-email"
[[queue]]
name = "{p}-orders"
visibility_timeout_seconds = {visibility}
dead_letter = {{ queue = "{p}-orders-dlq", max_receive_count = {MAX_RECEIVES} }}

[[table]]
name = "{p}-table"
partition_key = "PK"
sort_key = "SK"
ttl_attribute = "expiration"
[[table.index]]
name = "GSI1"
partition_key = "GSI1PK"
sort_key = "GSI1SK"
[[table.index]]
name = "GSI2"
partition_key = "GSI2PK"
sort_key = "GSI2SK"
"#
    )
}

fn fleet_toml(p: &str) -> String {
    format!(
        r#"
topology = "topology.toml"
table = "{p}-table"
events_topic = "{p}-events"
shutdown_timeout = "10s"

[orders]
queue = "{p}-orders"
[orders.consumer]
pollers = 1
concurrency = 10
wait_time = "1s"
retry = {{ base = "1s", max = "2s", jitter = "equal" }}

[analytics]
enabled = false

[email]
enabled = false
queue = "{p}-email"
"#
    )
}
