//! The pure half of the DynamoDB counter store: which events go into which transaction, the
//! write shard, the idempotency token, and what a cancellation says about each event.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use super::aggregate::{EventDeltas, sum};
use crate::table::keys::shard_of;

/// `TransactWriteItems` takes at most 100 actions.
pub(crate) const MAX_ACTIONS: usize = 100;
/// `ClientRequestToken` is at most 36 characters.
const TOKEN_CHARS: usize = 36;

/// Splits events (distinct ids) into consecutive groups of at most `max_actions` actions each
/// (one per event, one per distinct counter), so each group is one exact transaction.
pub(crate) fn split<'a>(
    events: &[&'a EventDeltas],
    max_actions: usize,
) -> Vec<Vec<&'a EventDeltas>> {
    let mut groups: Vec<Vec<&EventDeltas>> = Vec::new();
    let mut current: Vec<&EventDeltas> = Vec::new();
    let mut counters: HashSet<&str> = HashSet::new();
    for &event in events {
        let new: HashSet<&str> = event
            .deltas
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !counters.contains(k))
            .collect();
        let actions = current.len() + 1 + counters.len() + new.len();
        if actions > max_actions && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            counters.clear();
        }
        counters.extend(event.deltas.iter().map(|(k, _)| k.as_str()));
        current.push(event);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// One transaction: a deduplication put per event, then one `ADD` per distinct counter.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// The events, in action order (actions `0..events.len()`).
    pub events: Vec<&'a EventDeltas>,
    /// The summed deltas, in action order after the events.
    pub counters: Vec<(String, i64)>,
    /// The shard every counter of this transaction writes.
    pub shard: u32,
}

impl<'a> Plan<'a> {
    /// The transaction for `events` (distinct ids, at least one), on the shard of its first
    /// event id.
    pub fn new(events: Vec<&'a EventDeltas>, shards: u32) -> Self {
        let shard = events.first().map_or(0, |e| shard_of(&e.event_id, shards));
        let counters = sum(events.iter().copied()).into_iter().collect();
        Self {
            events,
            counters,
            shard,
        }
    }

    /// How many actions the transaction has.
    pub fn actions(&self) -> usize {
        self.events.len() + self.counters.len()
    }

    /// Indices of the events that add to the counter at `counter` (an index into `counters`).
    fn contributors(&self, counter: usize) -> Vec<usize> {
        let Some((key, _)) = self.counters.get(counter) else {
            return Vec::new();
        };
        (0..self.events.len())
            .filter(|&i| self.events[i].deltas.iter().any(|(k, _)| k == key))
            .collect()
    }

    /// A token derived from the exact action set (the table, the shard, the expiration and
    /// every id, key and delta), so a retry of the same request is recognised by DynamoDB and
    /// applied at most once, and any other request gets another token.
    pub fn token(&self, table: &str, expiration: i64) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(table.as_bytes());
        field(&self.shard.to_be_bytes());
        field(&expiration.to_be_bytes());
        for e in &self.events {
            field(e.event_id.as_bytes());
        }
        for (key, delta) in &self.counters {
            field(key.as_bytes());
            field(&delta.to_be_bytes());
        }
        let mut token = hex::encode(h.finalize());
        token.truncate(TOKEN_CHARS);
        token
    }

    /// What a cancellation says about each event, from its reasons in action order: an event
    /// whose deduplication put failed its condition is a duplicate; an event whose put, or a
    /// counter it adds to, failed for another reason failed (a duplicate stays a duplicate).
    /// Never empty: a cancellation without a usable reason fails every event.
    pub fn verdicts(&self, reasons: &[Reason]) -> BTreeMap<usize, Verdict> {
        let mut verdicts = BTreeMap::new();
        let events = self.events.len();
        for (action, reason) in reasons.iter().enumerate() {
            let Some(code) = reason.code.as_deref().filter(|c| *c != "None") else {
                continue;
            };
            if action < events && code == "ConditionalCheckFailed" {
                verdicts.insert(action, Verdict::Duplicate);
                continue;
            }
            let failed = Verdict::Failed {
                label: failure_label(code),
                why: format!(
                    "{code}: {}",
                    reason.message.as_deref().unwrap_or("no message")
                ),
            };
            let involved = if action < events {
                vec![action]
            } else {
                self.contributors(action - events)
            };
            for event in involved {
                verdicts.entry(event).or_insert_with(|| failed.clone());
            }
        }
        if verdicts.is_empty() {
            let failed = Verdict::Failed {
                label: "transaction_cancelled",
                why: "cancelled without a reason for any action".to_owned(),
            };
            verdicts = (0..events).map(|i| (i, failed.clone())).collect();
        }
        verdicts
    }
}

/// One action's cancellation reason, as DynamoDB returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reason {
    /// `None`, `ConditionalCheckFailed`, `TransactionConflict`, `ThrottlingError`, ...
    pub code: Option<String>,
    /// DynamoDB's message.
    pub message: Option<String>,
}

/// What a cancelled transaction means for one of its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its id was counted before: drop it.
    Duplicate,
    /// Its write failed this time.
    Failed {
        /// The failure's label.
        label: &'static str,
        /// The reason's code and message.
        why: String,
    },
}

/// The label of a failed action by its cancellation code.
fn failure_label(code: &str) -> &'static str {
    match code {
        "TransactionConflict" => "transaction_conflict",
        "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => {
            "dynamodb_throttled"
        }
        _ => "transaction_cancelled",
    }
}

#[cfg(test)]
mod tests;
