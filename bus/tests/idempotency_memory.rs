//! The in-memory idempotency store passes the conformance suite.

use std::sync::Arc;

use fleet_bus::idempotency::{IdempotencyStore, MemoryIdempotencyStore};

async fn memory() -> Arc<dyn IdempotencyStore> {
    Arc::new(MemoryIdempotencyStore::new())
}

fleet_bus::idempotency_tests!(#[tokio::test(start_paused = true)], memory);
