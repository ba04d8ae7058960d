//! The prices Fleet's cost estimates use: one table, in US dollars, for US East (N. Virginia).
//!
//! **Read on 2026-12-06**, from secondary pages that quote the AWS pricing pages (this machine
//! reaches no AWS page): cloudburn.io's SQS pricing guide (prices as of March 2026),
//! factualminds.com's SQS and SNS pricing posts (June 2026) and airbyte.com's DynamoDB pricing
//! guide (on-demand prices after the November 2024 reduction). Check them against
//! <https://aws.amazon.com/sqs/pricing/>, <https://aws.amazon.com/sns/pricing/> and
//! <https://aws.amazon.com/dynamodb/pricing/on-demand/> before relying on an estimate, and update
//! this file (and the date) when they change. The Grafana dashboard's cost panel uses the same
//! numbers; a test keeps the two equal.
//!
//! What the estimates leave out: free tiers (1 million SQS and SNS requests a month), volume
//! tiers (SQS standard drops to $0.30 per million beyond 100 billion requests a month), data
//! transfer, storage, and the 64 KB rule (each 64 KB of payload is billed as one request: Fleet's
//! requests are counted, not their size, so large messages cost more than estimated).

/// When the prices below were read.
pub const READ_ON: &str = "2026-12-06";

/// SQS standard queues: dollars per million requests (each 64 KB chunk of a request's payload
/// is one request; a batch of 10 small messages is one request).
pub const SQS_STANDARD_PER_MILLION_REQUESTS: f64 = 0.40;
/// SQS FIFO queues: dollars per million requests.
pub const SQS_FIFO_PER_MILLION_REQUESTS: f64 = 0.50;
/// SNS standard topics: dollars per million publish requests (a `PublishBatch` of small messages
/// is one request). Deliveries to SQS queues are free.
pub const SNS_PER_MILLION_REQUESTS: f64 = 0.50;
/// DynamoDB on-demand: dollars per million write request units.
pub const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
/// DynamoDB on-demand: dollars per million read request units.
pub const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
