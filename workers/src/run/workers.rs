//! Each worker's handler, built from the process's backends and configuration.

use std::sync::Arc;

use fleet_bus::BusError;
use fleet_bus::consumer::Handler;

use super::backends::{Backends, Stores};
use super::config::{FleetConfig, WorkerKind};
use fleet_bus::producer::BatchProducer;

use crate::analytics::{
    AnalyticsWorker, CounterStore, DynamoCounterConfig, DynamoCounterStore, MemoryCounterStore,
};
use crate::orders::{DynamoOrderStore, MemoryOrderStore, OrderStore, OrdersWorker};

/// The in-memory stores of an embedded run, kept so a caller (the demo) can read them.
#[derive(Default)]
pub struct MemoryStores {
    /// The orders worker's orders and outbox.
    pub orders: Arc<MemoryOrderStore>,
    /// The analytics worker's counters.
    pub counters: Arc<MemoryCounterStore>,
}

/// Builds one worker's handler.
///
/// # Errors
/// When the worker's publisher cannot be opened.
pub async fn handler_for(
    worker: WorkerKind,
    backends: &Backends,
    config: &FleetConfig,
) -> Result<Handler, BusError> {
    match worker {
        WorkerKind::Analytics => Ok(AnalyticsWorker::new(counter_store(backends, config))
            .handler()
            .into()),
        WorkerKind::Orders => {
            let topic = backends.transport.topic(&config.events_topic).await?;
            let events = BatchProducer::to_topic(&config.events_topic, topic);
            Ok(OrdersWorker::new(order_store(backends, config), events)
                .handler()
                .into())
        }
    }
}

fn counter_store(backends: &Backends, config: &FleetConfig) -> Arc<dyn CounterStore> {
    match &backends.stores {
        Stores::Dynamo { client } => Arc::new(DynamoCounterStore::new(
            client.clone(),
            DynamoCounterConfig {
                table: config.table_of(WorkerKind::Analytics).to_owned(),
                shards: config.analytics.counter_shards,
                dedup_ttl: config.analytics.dedup_ttl,
            },
        )),
        Stores::Memory(m) => m.counters.clone(),
    }
}

fn order_store(backends: &Backends, config: &FleetConfig) -> Arc<dyn OrderStore> {
    match &backends.stores {
        Stores::Dynamo { client } => Arc::new(DynamoOrderStore::new(
            client.clone(),
            config.table_of(WorkerKind::Orders),
        )),
        Stores::Memory(m) => m.orders.clone(),
    }
}
