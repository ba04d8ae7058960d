//! Shared by the analytics tests: counter stores on a fresh single table in moto, events and
//! their deltas.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use fleet_bus::scenarios::unique_name;
use fleet_tests::moto;
use fleet_workers::analytics::{
    CounterStore, DynamoCounterConfig, DynamoCounterStore, EventDeltas, EventOutcome,
};
use fleet_workers::aws_calls::AwsCalls;

/// A DynamoDB counter store on a fresh single table in moto, its calls counted.
pub struct Dynamo {
    pub store: DynamoCounterStore,
    pub calls: AwsCalls,
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Dynamo {
    /// A store on a new table (default shards and TTL).
    pub async fn new() -> Self {
        Self::with(DynamoCounterConfig::default()).await
    }

    /// A store on a new table with `config` (its table name replaced by a unique one).
    pub async fn with(mut config: DynamoCounterConfig) -> Self {
        let sdk = moto::sdk_config().await;
        let table = unique_name("analytics");
        fleet_tests::dynamo::single_table(&sdk, &table).await;
        let calls = AwsCalls::new();
        let client = calls.dynamodb_client(&sdk);
        config.table = table.clone();
        Self {
            store: DynamoCounterStore::new(client.clone(), config),
            calls,
            client,
            table,
        }
    }

    /// The store as the trait object the worker takes.
    pub fn shared(&self) -> Arc<dyn CounterStore> {
        Arc::new(self.store.clone())
    }

    /// `TransactWriteItems` calls made so far (each `send()`, SDK retries not counted apart).
    pub fn transactions(&self) -> u64 {
        self.calls.get("DynamoDB", "TransactWriteItems").calls
    }

    /// Every item of the table whose `PK` starts with `prefix`.
    pub async fn items(
        &self,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(PK, :p)")
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .send()
            .await
            .unwrap();
        out.items().to_vec()
    }
}

/// An event adding `delta` to each of `keys`.
pub fn event(id: &str, keys: &[(&str, i64)]) -> EventDeltas {
    EventDeltas::new(id, keys.iter().map(|(k, d)| ((*k).to_owned(), *d)))
}

/// Applies `events` until none fails (a conflict is retried, as a redelivery would), and returns
/// every outcome that was not a failure, in order of settlement.
pub async fn apply_until_settled(
    store: &dyn CounterStore,
    events: Vec<EventDeltas>,
) -> Vec<(String, EventOutcome)> {
    let mut pending = events;
    let mut settled = Vec::new();
    for _ in 0..50 {
        if pending.is_empty() {
            return settled;
        }
        let outcomes = store.apply(&pending).await;
        assert_eq!(outcomes.len(), pending.len(), "one outcome per event");
        let mut failed = Vec::new();
        for (event, outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                EventOutcome::Failed(_) => failed.push(event),
                done => settled.push((event.event_id, done)),
            }
        }
        pending = failed;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("events still failing after 50 tries: {pending:?}");
}
