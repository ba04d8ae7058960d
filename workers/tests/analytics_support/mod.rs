//! Shared by the analytics tests: counter stores on a fresh single table in moto, events and
//! their deltas.
#![allow(dead_code, clippy::unwrap_used)]

pub mod mix;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::StatusCode;

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
    pub async fn with(config: DynamoCounterConfig) -> Self {
        Self::faulty(config, Vec::new()).await
    }

    /// A store on a new table whose `TransactWriteItems` calls go through `fault`.
    pub async fn with_fault(fault: Fault) -> Self {
        Self::faulty(DynamoCounterConfig::default(), vec![fault]).await
    }

    /// A store on a new table whose `TransactWriteItems` calls go through every fault.
    pub async fn with_faults(faults: Vec<Fault>) -> Self {
        Self::faulty(DynamoCounterConfig::default(), faults).await
    }

    async fn faulty(mut config: DynamoCounterConfig, faults: Vec<Fault>) -> Self {
        let sdk = moto::sdk_config().await;
        let table = unique_name("analytics");
        fleet_tests::dynamo::single_table(&sdk, &table).await;
        let calls = AwsCalls::new();
        let mut builder =
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(calls.interceptor());
        for fault in faults {
            builder = builder.interceptor(fault);
        }
        let client = aws_sdk_dynamodb::Client::from_conf(builder.build());
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

/// What a [`Fault`] does to a `TransactWriteItems` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The request never leaves: nothing is written (a network error before sending).
    BeforeSending,
    /// The table committed, but the response turns into a 500: the SDK retries the same
    /// request (same `ClientRequestToken`).
    LostResponseRetried,
    /// The table committed, but the response turns into a refusal the SDK does not retry: the
    /// store reports a failure although the write happened (a crash after the commit).
    LostResponseRefused,
}

/// Makes the next `times` `TransactWriteItems` calls fail as `kind` says.
#[derive(Clone, Debug)]
pub struct Fault {
    kind: FaultKind,
    left: Arc<AtomicU32>,
}

impl Fault {
    /// A fault for the next `times` calls.
    pub fn new(kind: FaultKind, times: u32) -> Self {
        Self {
            kind,
            left: Arc::new(AtomicU32::new(times)),
        }
    }

    /// Faults not injected yet.
    pub fn left(&self) -> u32 {
        self.left.load(Ordering::SeqCst)
    }

    fn take(&self, cfg: &ConfigBag, kind: FaultKind) -> bool {
        let transact = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "TransactWriteItems");
        transact
            && self.kind == kind
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }
}

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "analytics-test-fault"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.take(cfg, FaultKind::BeforeSending) {
            return Err("injected: the connection failed before sending".into());
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The status alone decides: a 500 is retried by the SDK, a 400 is not.
        let status = if self.take(cfg, FaultKind::LostResponseRetried) {
            500
        } else if self.take(cfg, FaultKind::LostResponseRefused) {
            400
        } else {
            return Ok(());
        };
        *context.response_mut().status_mut() = StatusCode::try_from(status).unwrap();
        Ok(())
    }
}
