//! Sending what is pending: full batches, or what waited a flush interval, or everything at
//! once when draining or a lease was given up; each call bounded by the leases it carries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::calls::{self, CALL_TIMEOUT, ChangeEntry, Op, distinct_batches};
use super::lease::{Phase, Settle, State};
use super::{Event, MIN_CALL_TIME, Settler};
use crate::consumer::observe::Observer;
use crate::message::OutgoingMessage;
use crate::transport::Queue;

impl Settler {
    /// How long a call for these leases may take: until the first of them must be given up.
    fn call_limit(&self, ids: impl Iterator<Item = u64>, now: Instant) -> Duration {
        let by_lease = ids
            .filter_map(|id| self.leases.get(&id))
            .map(|l| l.calls_by().saturating_duration_since(now))
            .min()
            .unwrap_or(CALL_TIMEOUT);
        let by_drain = self
            .drain_by
            .map_or(CALL_TIMEOUT, |d| d.saturating_duration_since(now));
        by_lease.min(by_drain).min(CALL_TIMEOUT).max(MIN_CALL_TIME)
    }

    /// Marks a queued settlement as on the wire; false if it is no longer queued.
    fn take_queued(&mut self, id: u64) -> bool {
        match self.leases.get_mut(&id).map(|l| &mut l.state) {
            Some(State::Settling(s)) if s.phase == Phase::Queued => {
                s.phase = Phase::InFlight;
                true
            }
            _ => false,
        }
    }

    pub(super) fn flush(&mut self, now: Instant) {
        let interval = self.setup.flush_interval;
        let draining = self.drain_by.is_some() || std::mem::take(&mut self.flush_now);
        let urgent = self.changes.items.iter().any(|c| c.extension);
        if self.changes.due(interval, now, draining || urgent) {
            let entries: Vec<ChangeEntry> = self
                .changes
                .take()
                .into_iter()
                .filter(|c| match c.extension {
                    true => self
                        .leases
                        .get(&c.id)
                        .is_some_and(|l| l.extending && !matches!(l.state, State::Lost)),
                    false => self.take_queued(c.id),
                })
                .collect();
            for batch in distinct_batches(entries, |c| c.id, |_| 0) {
                let limit = self.call_limit(batch.iter().map(|c| c.id), now);
                let (queue, obs, tx) = self.call_parts();
                calls::spawn_changes(queue, obs, tx, batch, limit);
            }
        }
        if self.dead.due(interval, now, draining) {
            let ids: Vec<u64> = self.dead.take();
            let mut entries = Vec::new();
            for id in ids {
                if self.take_queued(id)
                    && let Some(out) = self.dead_letter_of(id)
                {
                    entries.push((id, out));
                }
            }
            for batch in distinct_batches(entries, |e| e.0, |e| e.1.size()) {
                let limit = self.call_limit(batch.iter().map(|e| e.0), now);
                let (_, obs, tx) = self.call_parts();
                let dlq = self.setup.dead_letter.clone();
                calls::spawn_dead_letters(dlq, obs, tx, batch, limit);
            }
        }
        if self.deletes.due(interval, now, draining) {
            let ids: Vec<u64> = self.deletes.take();
            let mut entries = Vec::new();
            for id in ids {
                if self.take_queued(id)
                    && let Some(l) = self.leases.get(&id)
                {
                    entries.push((id, l.receipt.clone()));
                }
            }
            for batch in distinct_batches(entries, |e| e.0, |_| 0) {
                let limit = self.call_limit(batch.iter().map(|e| e.0), now);
                let (queue, obs, tx) = self.call_parts();
                calls::spawn_deletes(queue, obs, tx, batch, limit);
            }
        }
    }

    fn call_parts(&self) -> (Arc<dyn Queue>, Arc<Observer>, UnboundedSender<Event>) {
        (
            self.setup.queue.clone(),
            self.setup.obs.clone(),
            self.tx.clone(),
        )
    }

    fn dead_letter_of(&self, id: u64) -> Option<OutgoingMessage> {
        match &self.leases.get(&id)?.state {
            State::Settling(Settle {
                op: Op::DeadLetter { out, .. },
                ..
            }) => Some(out.as_ref().clone()),
            _ => None,
        }
    }
}
