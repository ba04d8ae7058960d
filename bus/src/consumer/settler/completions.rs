//! What the settler does when a call comes back: count what was settled, finish dead-letters by
//! deleting the source, and keep or give up leases.

use tokio::time::Instant;

use super::calls::{Change, ChangeKind, Completed, DeadEntry, DeleteEntry};
use super::lease::visibility_budget;
use super::{RECEIPT_GONE, Settler};
use crate::message::EntryResult;

impl Settler {
    pub(super) fn on_completed(&mut self, done: Completed, now: Instant) {
        match done {
            Completed::Deleted(results) => {
                for (e, r) in results {
                    match r {
                        Ok(()) if e.dead_lettered => {
                            self.report.dead_lettered += 1;
                            self.setup.scope.dead_lettered();
                        }
                        Ok(()) => {
                            self.report.acked += 1;
                            self.setup.scope.acked(1);
                        }
                        Err(err) => self.settle_failed(
                            "DeleteMessageBatch",
                            &e.message_id,
                            &err.to_string(),
                        ),
                    }
                }
            }
            Completed::Changed(results) => {
                for (c, r) in results {
                    self.on_changed(c, r, now);
                }
            }
            Completed::DeadLettered(results) => {
                for (e, r) in results {
                    self.on_dead_lettered(e, r.map(|_| ()), now);
                }
            }
        }
    }

    fn on_dead_lettered(&mut self, e: DeadEntry, r: EntryResult<()>, now: Instant) {
        match r {
            Ok(()) if e.then.is_some() => {
                // The note is in: now the dead letter it explains.
                let DeadEntry {
                    message_id,
                    receipt,
                    then,
                    received_at,
                    attempt,
                    ..
                } = e;
                let out = then.expect("checked above");
                self.dead.push(
                    DeadEntry {
                        message_id,
                        receipt,
                        out,
                        then: None,
                        received_at,
                        attempt,
                    },
                    now,
                );
            }
            Ok(()) => self.deletes.push(
                DeleteEntry {
                    message_id: e.message_id,
                    receipt: e.receipt,
                    dead_lettered: true,
                },
                now,
            ),
            Err(err) => {
                // Not deleted from the source: it comes back after a backoff and is dead-lettered
                // again (or moved by the queue's own redrive).
                self.setup
                    .scope
                    .settle_failed("SendMessageBatch", &e.message_id, &err.to_string());
                let delay = self
                    .setup
                    .retry
                    .delay_for(e.attempt)
                    .min(visibility_budget(e.received_at, now));
                let c = Change {
                    id: 0,
                    message_id: e.message_id,
                    receipt: e.receipt,
                    timeout: delay,
                    kind: ChangeKind::Retry,
                    issued: now,
                };
                self.changes.push(c, now);
            }
        }
    }

    fn on_changed(&mut self, c: Change, r: EntryResult<()>, now: Instant) {
        match (c.kind, r) {
            (ChangeKind::Extend, r) => self.on_extended(&c, r, now),
            (ChangeKind::Retry, Ok(())) => {
                self.report.retried += 1;
                self.setup.scope.retried();
            }
            (ChangeKind::Release, Ok(())) => {
                self.report.released += 1;
                self.setup.scope.released(1, "released");
            }
            (_, Err(err)) => self.settle_failed(
                "ChangeMessageVisibilityBatch",
                &c.message_id,
                &err.to_string(),
            ),
        }
    }

    /// An extension landed. Only an answer that the receipt no longer holds the message loses the
    /// lease; throttling or a failed call is tried again while the lease lasts.
    fn on_extended(&mut self, c: &Change, r: EntryResult<()>, now: Instant) {
        let Some(lease) = self.leases.get_mut(&c.id) else {
            return;
        };
        let mut gone = None;
        match r {
            Ok(()) => {
                lease.extended(c.issued, c.timeout);
                self.report.extensions += 1;
                self.setup.scope.lease_extended(1);
            }
            Err(e) if RECEIPT_GONE.contains(&e.code.as_str()) => {
                lease.extending = false;
                gone = Some(e.to_string());
            }
            Err(e) if e.code == "InvalidParameterValue" => {
                // The service will not extend further (its 12-hour rule): stop before the deadline.
                lease.extending = false;
                lease.capped = true;
                tracing::warn!(queue = %self.setup.scope.queue, message_id = %c.message_id, error = %e, "visibility cannot be extended further");
            }
            Err(e) => {
                lease.extension_failed(now);
                tracing::warn!(queue = %self.setup.scope.queue, message_id = %c.message_id, error = %e, "extending visibility failed; trying again");
            }
        }
        if let Some(verdict) = lease.deferred.take() {
            // The handler finished meanwhile: settle as it decided. A delete with a receipt that
            // no longer holds the message fails and is reported; it never harms another consumer.
            self.on_decided(c.id, verdict, now);
        } else if let Some(why) = gone {
            lease.lose();
            self.setup.scope.lease_lost(&c.message_id, &why);
        }
    }

    fn settle_failed(&mut self, op: &'static str, message_id: &str, error: &str) {
        self.report.settle_failed += 1;
        self.setup.scope.settle_failed(op, message_id, error);
    }
}
