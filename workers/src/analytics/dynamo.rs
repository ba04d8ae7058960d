//! [`DynamoCounterStore`]: the counters on the single table.
//!
//! Each call of [`CounterStore::apply`] (one SQS batch) is one `TransactWriteItems` of at most
//! 100 actions (more events are split into groups, each exact on its own):
//! - a `Put` of each event's deduplication item (`PK = EVENT#<id>`, `SK = ANALYTICS`,
//!   `expiration` = now + the TTL) on condition `attribute_not_exists(PK)`;
//! - one `Update ... ADD value :delta` per distinct counter (`PK = COUNTER#<key>`,
//!   `SK = SHARD#<n>`), with the deltas of the batch summed. Every counter of one transaction
//!   writes the same shard, a hash of its first event id, so a hot counter spreads over the
//!   shards without adding items to a transaction; readers sum the shards.
//!
//! A duplicate (its put's condition failed, found by index among the `CancellationReasons`) is
//! dropped and the rest resubmitted with the deltas summed again, until it commits or nothing is
//! left. Other reasons fail the events involved (their put, or a counter they add to) for this
//! time. The `ClientRequestToken` is a hash of the exact action set, so the SDK's retry of a call
//! that committed is not applied twice (on AWS; elsewhere the deduplication items catch it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::{StreamExt as _, TryStreamExt as _};
use metrics::counter;

use super::aggregate::EventDeltas;
use super::error::{AnalyticsError, Said, WriteFailure};
use super::metric;
use super::store::{CounterStore, EventOutcome, first_copies, spread_to_copies};
use super::transaction::{MAX_ACTIONS, Plan, Reason, Verdict, split};
use crate::table::{DEFAULT_TABLE, EXPIRATION, PK, SK, keys};

mod stats;

use stats::Stats;
pub use stats::WriteStats;

/// The counter's number attribute (a reserved word in expressions, so always through `#value`).
pub(crate) const VALUE: &str = "value";
/// Counters read at once by [`CounterStore::read`] (one `Query` each).
const READ_CONCURRENCY: usize = 8;

/// Where and how the counters are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamoCounterConfig {
    /// The single table (`fleet`).
    pub table: String,
    /// Write shards per counter: a transaction writes one of them (default 4).
    pub shards: u32,
    /// How long an event's deduplication item lives: longer than the queue's message retention
    /// (at most 14 days on SQS), so no redelivery can outlive it (default 15 days).
    pub dedup_ttl: Duration,
}

impl Default for DynamoCounterConfig {
    fn default() -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            shards: 4,
            dedup_ttl: Duration::from_secs(15 * 24 * 3600),
        }
    }
}

/// The counter store on the single DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoCounterStore {
    client: Client,
    config: Arc<DynamoCounterConfig>,
    stats: Arc<Stats>,
}

/// How one transaction ended.
enum Submitted {
    Committed,
    Cancelled(Vec<Reason>),
    Failed(WriteFailure),
}

impl DynamoCounterStore {
    /// A store writing through `client` as `config` says.
    pub fn new(client: Client, config: DynamoCounterConfig) -> Self {
        Self {
            client,
            config: Arc::new(config),
            stats: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DynamoCounterConfig {
        &self.config
    }

    /// What the writes cost so far.
    pub fn write_stats(&self) -> WriteStats {
        self.stats.snapshot()
    }

    /// Applies one group of events (distinct ids, at most [`MAX_ACTIONS`] actions), recording
    /// each event's outcome: resubmits without the duplicates and failures a cancellation names,
    /// until it commits or nothing is left. Each round drops at least one event, so it ends.
    async fn apply_group<'a>(
        &self,
        mut pending: Vec<&'a EventDeltas>,
        expiration: i64,
        outcomes: &mut std::collections::HashMap<&'a str, EventOutcome>,
    ) {
        while !pending.is_empty() {
            let plan = Plan::new(pending.clone(), self.config.shards);
            match self.submit(&plan, expiration).await {
                Submitted::Committed => {
                    for e in &plan.events {
                        outcomes.insert(e.event_id.as_str(), EventOutcome::Applied);
                    }
                    return;
                }
                Submitted::Failed(failure) => {
                    for e in &plan.events {
                        outcomes.insert(e.event_id.as_str(), EventOutcome::Failed(failure.clone()));
                    }
                    return;
                }
                Submitted::Cancelled(reasons) => {
                    let verdicts = plan.verdicts(&reasons);
                    for (&index, verdict) in &verdicts {
                        let id = plan.events[index].event_id.as_str();
                        outcomes.insert(id, self.outcome(verdict));
                    }
                    pending = (0..plan.events.len())
                        .filter(|i| !verdicts.contains_key(i))
                        .map(|i| plan.events[i])
                        .collect();
                }
            }
        }
    }

    fn outcome(&self, verdict: &Verdict) -> EventOutcome {
        match verdict {
            Verdict::Duplicate => EventOutcome::Duplicate,
            Verdict::Failed { label, why } => EventOutcome::Failed(WriteFailure::new(
                label,
                Said(format!(
                    "TransactWriteItems on {} cancelled: {why}",
                    self.config.table
                )),
            )),
        }
    }

    /// Sends one transaction.
    async fn submit(&self, plan: &Plan<'_>, expiration: i64) -> Submitted {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let submitted = match self.actions(plan, expiration) {
            Ok(actions) => {
                let sent = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(actions))
                    .client_request_token(plan.token(&self.config.table, expiration))
                    .send()
                    .await;
                self.judge(sent)
            }
            Err(failure) => Submitted::Failed(failure),
        };
        let outcome = match &submitted {
            Submitted::Committed => {
                self.stats.record_commit(plan, expiration);
                "committed"
            }
            Submitted::Cancelled(_) => {
                self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                "cancelled"
            }
            Submitted::Failed(_) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                "failed"
            }
        };
        counter!(metric::TRANSACTIONS, "outcome" => outcome).increment(1);
        submitted
    }

    fn judge<R>(&self, sent: Result<R, SdkError<TransactWriteItemsError>>) -> Submitted {
        let error = match sent {
            Ok(_) => return Submitted::Committed,
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        {
            let reasons = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| Reason {
                    code: r.code().map(str::to_owned),
                    message: r.message().map(str::to_owned),
                })
                .collect();
            return Submitted::Cancelled(reasons);
        }
        let label = match error.as_service_error() {
            Some(TransactWriteItemsError::ResourceNotFoundException(_)) => "table_not_found",
            Some(
                TransactWriteItemsError::ThrottlingException(_)
                | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                | TransactWriteItemsError::RequestLimitExceeded(_),
            ) => "dynamodb_throttled",
            Some(TransactWriteItemsError::IdempotentParameterMismatchException(_)) => {
                "idempotency_token_mismatch"
            }
            Some(_) => "dynamodb_refused",
            None => "dynamodb_unavailable",
        };
        tracing::warn!(
            table = %self.config.table,
            label,
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error),
            "writing the analytics counters failed"
        );
        Submitted::Failed(WriteFailure::new(label, error))
    }

    /// The transaction's actions: the deduplication puts, then the counter updates.
    fn actions(
        &self,
        plan: &Plan<'_>,
        expiration: i64,
    ) -> Result<Vec<TransactWriteItem>, WriteFailure> {
        let table = &self.config.table;
        let invalid = |e| WriteFailure::new("request_invalid", e);
        let mut actions = Vec::with_capacity(plan.actions());
        for event in &plan.events {
            let put = Put::builder()
                .table_name(table)
                .item(PK, s(keys::analytics_event_pk(&event.event_id)))
                .item(SK, s(keys::ANALYTICS_SK))
                .item(EXPIRATION, n(expiration))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(invalid)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        for (key, delta) in &plan.counters {
            let update = Update::builder()
                .table_name(table)
                .key(PK, s(keys::counter_pk(key)))
                .key(SK, s(keys::counter_sk(plan.shard)))
                .update_expression("ADD #value :delta")
                .expression_attribute_names("#value", VALUE)
                .expression_attribute_values(":delta", n(*delta))
                .build()
                .map_err(invalid)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(actions)
    }

    /// One counter: the sum of its shards (a `Query` on its partition key).
    async fn read_one(&self, key: &str) -> Result<i64, AnalyticsError> {
        let read_failed =
            |e: Box<dyn std::error::Error + Send + Sync>| AnalyticsError::Read(e.into());
        let mut pages = self
            .client
            .query()
            .table_name(&self.config.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::counter_pk(key)))
            .projection_expression("#value")
            .expression_attribute_names("#value", VALUE)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut total: i64 = 0;
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| {
                let missing = e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if missing {
                    let why = format!(
                        "table {} not found: create it with `fleet provision`",
                        self.config.table
                    );
                    return read_failed(Box::new(Said(why)));
                }
                read_failed(Box::new(e))
            })?;
            let value = match item.get(VALUE) {
                Some(AttributeValue::N(text)) => {
                    text.parse::<i64>().map_err(|e| read_failed(Box::new(e)))?
                }
                _ => 0,
            };
            total = total.saturating_add(value);
        }
        Ok(total)
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Now plus `ttl`, in epoch seconds (what DynamoDB's TTL reads).
fn expiration_after(ttl: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from((now + ttl).as_secs()).unwrap_or(i64::MAX)
}

#[async_trait]
impl CounterStore for DynamoCounterStore {
    async fn apply(&self, events: &[EventDeltas]) -> Vec<EventOutcome> {
        let expiration = expiration_after(self.config.dedup_ttl);
        let mut outcomes = std::collections::HashMap::new();
        for group in split(&first_copies(events), MAX_ACTIONS) {
            self.apply_group(group, expiration, &mut outcomes).await;
        }
        spread_to_copies(events, &outcomes)
    }

    async fn read(&self, keys: &[String]) -> Result<Vec<i64>, AnalyticsError> {
        // Made first so the stream holds futures, not a closure (which would not be `Send` for
        // every lifetime, as `async_trait` needs).
        let reads: Vec<_> = keys.iter().map(|key| self.read_one(key)).collect();
        futures::stream::iter(reads)
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await
    }
}
