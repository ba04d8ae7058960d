//! What the DynamoDB counter store's writes cost: calls by outcome, items, and write capacity
//! computed from the items' sizes.

use std::sync::atomic::{AtomicU64, Ordering};

use super::VALUE;
use crate::analytics::transaction::Plan;
use crate::analytics::wcu;
use crate::table::{EXPIRATION, PK, SK, keys};

/// What the store's `TransactWriteItems` calls cost so far (calls as the store made them; the
/// SDK's own retries of one call are not counted apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// `TransactWriteItems` calls.
    pub calls: u64,
    /// Calls that committed.
    pub committed: u64,
    /// Calls cancelled (a duplicate, a conflict); each is resubmitted without what failed.
    pub cancelled: u64,
    /// Calls that failed as a whole (after the SDK's retries).
    pub failed: u64,
    /// Items written by the committed calls.
    pub items: u64,
    /// Write capacity units of the committed calls, computed from their items (see
    /// [`wcu`](crate::analytics::wcu)).
    pub wcu: u64,
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) calls: AtomicU64,
    pub(super) committed: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) items: AtomicU64,
    pub(super) wcu: AtomicU64,
}

impl Stats {
    /// Counts a committed transaction: its items and their WCU.
    pub(super) fn record_commit(&self, plan: &Plan<'_>, expiration: i64) {
        self.committed.fetch_add(1, Ordering::Relaxed);
        self.items
            .fetch_add(plan.actions() as u64, Ordering::Relaxed);
        self.wcu
            .fetch_add(plan_wcu(plan, expiration), Ordering::Relaxed);
    }

    /// The counts so far.
    pub(super) fn snapshot(&self) -> WriteStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriteStats {
            calls: get(&self.calls),
            committed: get(&self.committed),
            cancelled: get(&self.cancelled),
            failed: get(&self.failed),
            items: get(&self.items),
            wcu: get(&self.wcu),
        }
    }
}

/// WCU of a committed transaction, from the sizes of the items it wrote.
fn plan_wcu(plan: &Plan<'_>, expiration: i64) -> u64 {
    let dedup = plan.events.iter().map(|e| {
        wcu::string_attribute(PK, &keys::analytics_event_pk(&e.event_id))
            + wcu::string_attribute(SK, keys::ANALYTICS_SK)
            + wcu::number_attribute(EXPIRATION, expiration)
    });
    let counters = plan.counters.iter().map(|(key, _)| {
        wcu::string_attribute(PK, &keys::counter_pk(key))
            + wcu::string_attribute(SK, &keys::counter_sk(plan.shard))
            + wcu::any_number_attribute(VALUE)
    });
    dedup.chain(counters).map(wcu::transactional_item_wcu).sum()
}
