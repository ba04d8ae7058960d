//! The workers' single DynamoDB table: its declared name and the key strings of every item kind
//! (`keys`), built in one place so the orders, analytics and idempotency stores and the read
//! commands agree. The table itself is declared in `deploy/topology.toml` and created by
//! `fleet provision`.

pub mod keys;

/// The table's name in `deploy/topology.toml`.
pub const DEFAULT_TABLE: &str = "fleet";
/// The partition key attribute.
pub const PK: &str = "PK";
/// The sort key attribute.
pub const SK: &str = "SK";
/// The index that finds an order by its id.
pub const GSI1: &str = "GSI1";
/// `GSI1`'s partition key attribute.
pub const GSI1PK: &str = "GSI1PK";
/// `GSI1`'s sort key attribute.
pub const GSI1SK: &str = "GSI1SK";
/// The sparse, write-sharded index of orders by status.
pub const GSI2: &str = "GSI2";
/// `GSI2`'s partition key attribute.
pub const GSI2PK: &str = "GSI2PK";
/// `GSI2`'s sort key attribute.
pub const GSI2SK: &str = "GSI2SK";
/// The TTL attribute (epoch seconds), the name Powertools' idempotency records use.
pub const EXPIRATION: &str = "expiration";
