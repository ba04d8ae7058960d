//! Where counters live: [`CounterStore`], a small trait with a DynamoDB implementation
//! ([`super::DynamoCounterStore`]) and [`MemoryCounterStore`] for the embedded transport. Both
//! pass one conformance suite (`workers/tests/analytics_store.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::aggregate::EventDeltas;
use super::error::{AnalyticsError, WriteFailure};

/// What became of one event given to [`CounterStore::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Its deltas were added, exactly once.
    Applied,
    /// Its id was counted before (or earlier in the same call): nothing added.
    Duplicate,
    /// Nothing was added this time; trying again later may succeed.
    Failed(WriteFailure),
}

/// Counters applied exactly once per event id, and read back summed.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Adds each event's deltas unless its id was counted before, atomically per event: an
    /// event's deltas are added completely or not at all, together with the record of its id.
    /// Returns one outcome per event, in order; an id given twice in one call counts once (its
    /// later copies share the first one's outcome, a duplicate when it was applied).
    async fn apply(&self, events: &[EventDeltas]) -> Vec<EventOutcome>;

    /// The current value of each counter key (0 for a counter never written), in order.
    ///
    /// # Errors
    /// `Read` when the store cannot be read.
    async fn read(&self, keys: &[String]) -> Result<Vec<i64>, AnalyticsError>;
}

/// Outcomes of a call in which some ids appear more than once: each later copy of an id gets
/// its first copy's outcome, as a duplicate when that one was applied.
pub(crate) fn spread_to_copies(
    events: &[EventDeltas],
    first: &HashMap<&str, EventOutcome>,
) -> Vec<EventOutcome> {
    let mut seen = HashSet::new();
    events
        .iter()
        .map(|e| {
            let outcome = first
                .get(e.event_id.as_str())
                .cloned()
                .unwrap_or_else(|| EventOutcome::Failed(WriteFailure::label("not_attempted")));
            match (seen.insert(e.event_id.as_str()), outcome) {
                (false, EventOutcome::Applied) => EventOutcome::Duplicate,
                (_, outcome) => outcome,
            }
        })
        .collect()
}

/// The first copy of each id, in order.
pub(crate) fn first_copies(events: &[EventDeltas]) -> Vec<&EventDeltas> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert(e.event_id.as_str()))
        .collect()
}

/// Counters in memory, for the embedded transport and tests. Every applied id is remembered
/// for the life of the store (no TTL: it serves runs of minutes, not months).
#[derive(Debug, Default)]
pub struct MemoryCounterStore {
    state: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    applied: HashSet<String>,
    counters: HashMap<String, i64>,
}

impl MemoryCounterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every counter written, with its value (for checks and the demo's summary).
    pub fn snapshot(&self) -> HashMap<String, i64> {
        self.lock().counters.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The state is consistent after every statement that changes it, so a panic elsewhere
        // while the lock was held leaves nothing half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CounterStore for MemoryCounterStore {
    async fn apply(&self, events: &[EventDeltas]) -> Vec<EventOutcome> {
        let mut memory = self.lock();
        let mut outcomes = HashMap::new();
        for event in first_copies(events) {
            let outcome = if memory.applied.insert(event.event_id.clone()) {
                for (key, delta) in &event.deltas {
                    let value = memory.counters.entry(key.clone()).or_insert(0);
                    *value = value.saturating_add(*delta);
                }
                EventOutcome::Applied
            } else {
                EventOutcome::Duplicate
            };
            outcomes.insert(event.event_id.as_str(), outcome);
        }
        spread_to_copies(events, &outcomes)
    }

    async fn read(&self, keys: &[String]) -> Result<Vec<i64>, AnalyticsError> {
        let memory = self.lock();
        Ok(keys
            .iter()
            .map(|k| memory.counters.get(k).copied().unwrap_or(0))
            .collect())
    }
}
