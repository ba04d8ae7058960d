//! The DynamoDB idempotency store behind `fleet_bus::idempotency::IdempotencyStore`: records in
//! a table of their own keyed by `id` (the layout AWS Lambda Powertools uses), or in the single
//! table under `PK = IDEMPOTENCY#<key>`, `SK = IDEMPOTENCY`. It passes the same conformance suite
//! as the in-memory store (`workers/tests/idempotency_store.rs`).

mod dynamo;
pub mod item;

pub use dynamo::DynamoIdempotencyStore;
pub use item::KeyMode;
