//! What the settler does when a call comes back: count what was settled, move a dead letter on
//! from its note to itself to the source delete, try again what may succeed while the lease lasts,
//! and keep or give up leases.

use std::time::Duration;

use tokio::time::Instant;

use super::calls::{ChangeEntry, ChangeOutcome, Completed, Op};
use super::lease::visibility_budget;
use super::lease::{Phase, Settle, State};
use super::{Outcome, RECEIPT_GONE, Settler};
use crate::message::{EntryError, EntryResult};

/// First pause before a failed settlement is tried again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The pause before try `failures + 1`, with equal jitter.
fn pause(failures: u32) -> Duration {
    let raw = FIRST_PAUSE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_PAUSE);
    raw / 2 + raw.mul_f64(rand::random::<f64>() / 2.0)
}

impl Settler {
    pub(super) fn on_completed(&mut self, done: Completed, now: Instant) {
        match done {
            Completed::Deleted(ids, results) => {
                for (id, r) in ids.into_iter().zip(results) {
                    match (r, self.settling_op(id)) {
                        (_, None) => {}
                        (Ok(()), Some(Op::Delete { dead_lettered })) => {
                            let outcome = if *dead_lettered {
                                Outcome::DeadLettered
                            } else {
                                Outcome::Acked
                            };
                            self.finish(id, outcome);
                        }
                        (Ok(()), Some(_)) => {}
                        (Err(e), Some(_)) => self.failed_try(id, &e, now),
                    }
                }
            }
            Completed::Changed(entries, results) => {
                for (c, r) in entries.into_iter().zip(results) {
                    if c.extension {
                        self.on_extended(&c, r, now);
                        continue;
                    }
                    match (r, self.settling_op(c.id)) {
                        (
                            Ok(()),
                            Some(Op::Change {
                                outcome: change, ..
                            }),
                        ) => {
                            let outcome = match change {
                                ChangeOutcome::Retried => Outcome::Retried,
                                ChangeOutcome::Released => Outcome::Released,
                                ChangeOutcome::DeadLetterFailed => Outcome::SettleFailed,
                            };
                            self.finish(c.id, outcome);
                        }
                        (Err(e), Some(Op::Change { .. })) => self.failed_try(c.id, &e, now),
                        _ => {}
                    }
                }
            }
            Completed::SentToDeadLetter(ids, results) => {
                for (id, r) in ids.into_iter().zip(results) {
                    match r {
                        Ok(()) => self.dead_letter_sent(id, now),
                        Err(e) => self.failed_try(id, &e, now),
                    }
                }
            }
        }
    }

    fn settling_op(&self, id: u64) -> Option<&Op> {
        match &self.leases.get(&id)?.state {
            State::Settling(s) => Some(&s.op),
            _ => None,
        }
    }

    /// A dead-letter send landed: the note is in, so the dead letter follows; or the dead letter
    /// is in, so the source copy is deleted.
    fn dead_letter_sent(&mut self, id: u64, now: Instant) {
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        let State::Settling(s) = &mut lease.state else {
            return;
        };
        let Op::DeadLetter {
            then,
            attempt,
            last_receive,
            ..
        } = &mut s.op
        else {
            return;
        };
        let next = match then.take() {
            Some(letter) => Op::DeadLetter {
                out: letter,
                then: None,
                attempt: *attempt,
                last_receive: *last_receive,
            },
            None => Op::Delete {
                dead_lettered: true,
            },
        };
        // Even past the lease (given up while the send was on the wire) the delete is worth one
        // try: the receipt may still hold, and a copy left behind is a duplicate dead letter.
        let given_up = s.given_up;
        *s = Settle::new(next);
        s.given_up = given_up;
        self.ready(id, now);
    }

    /// A settling call failed for this message: try again after a pause while the lease lasts,
    /// or settle it as what it is.
    fn failed_try(&mut self, id: u64, e: &EntryError, now: Instant) {
        let retry = self.setup.retry;
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        let State::Settling(s) = &mut lease.state else {
            return;
        };
        let gone = RECEIPT_GONE.contains(&e.code.as_str());
        // At its last receive a message the dead-letter queue refuses is not handed back: the
        // queue's redrive would move it with no reason. Its send is tried again instead.
        let last_chance = matches!(
            s.op,
            Op::DeadLetter {
                last_receive: true,
                ..
            }
        );
        if !(s.given_up || gone) && (!e.sender_fault || last_chance) {
            if last_chance && e.sender_fault {
                tracing::error!(queue = %self.setup.obs.queue, message_id = %lease.message_id, code = %e.code, error = %e.message,
                    "the dead-letter queue refuses a message at its last receive; trying again while its lease lasts");
            }
            s.failures += 1;
            s.phase = Phase::Backoff(now + pause(s.failures));
            return;
        }
        match &s.op {
            Op::DeadLetter { attempt, .. } if !s.given_up && !gone => {
                // The dead-letter queue refused it: it comes back after a backoff and is tried
                // again, and counts as a failed settlement, not as a retry.
                let timeout = retry
                    .delay_for(*attempt)
                    .min(visibility_budget(lease.budget_from, now));
                tracing::debug!(queue = %self.setup.obs.queue, message_id = %lease.message_id, code = %e.code, "dead-letter send failed; the message comes back after a backoff");
                *s = Settle::new(Op::Change {
                    timeout,
                    outcome: ChangeOutcome::DeadLetterFailed,
                });
                self.ready(id, now);
            }
            op => {
                if matches!(
                    op,
                    Op::Delete {
                        dead_lettered: true
                    }
                ) {
                    tracing::warn!(queue = %self.setup.obs.queue, message_id = %lease.message_id, code = %e.code,
                        "the message is in the dead-letter queue but could not be deleted from its source; it will be received again, and its dead letter may be copied (copies share the message id)");
                }
                if gone {
                    // Proof the lease is gone (the message is back on the queue, maybe with
                    // another consumer, or deleted): lost, as an extension answered so would be.
                    let ids = [lease.message_id.clone()];
                    self.setup
                        .obs
                        .leases_lost(&ids, "the receipt no longer holds the message");
                    self.finish(id, Outcome::LeaseLost);
                } else {
                    self.finish(id, Outcome::SettleFailed);
                }
            }
        }
    }

    /// An extension landed. Only an answer that the receipt no longer holds the message loses the
    /// lease; throttling or a failed call is tried again while the lease lasts.
    fn on_extended(&mut self, c: &ChangeEntry, r: EntryResult<()>, now: Instant) {
        let Some(lease) = self.leases.get_mut(&c.id) else {
            return;
        };
        match r {
            Ok(()) => {
                lease.extended(c.issued, c.timeout);
                self.report.extensions += 1;
                self.setup.obs.lease_extended(1);
            }
            Err(e) if RECEIPT_GONE.contains(&e.code.as_str()) => {
                lease.extending = false;
                match &mut lease.state {
                    State::Running => {
                        lease.state = State::Lost;
                        lease.cancel.cancel();
                        let ids = [lease.message_id.clone()];
                        self.setup
                            .obs
                            .leases_lost(&ids, "the receipt no longer holds the message");
                    }
                    State::Settling(s) if s.phase == Phase::InFlight => s.given_up = true,
                    State::Settling(_) => {
                        let ids = [lease.message_id.clone()];
                        self.setup
                            .obs
                            .leases_lost(&ids, "the receipt no longer holds the message");
                        self.finish(c.id, Outcome::LeaseLost);
                    }
                    State::Lost => {}
                }
                return;
            }
            Err(e) if e.code == "InvalidParameterValue" => {
                // The service will not extend further (its 12-hour rule): the lease is given up
                // before it runs out.
                lease.extending = false;
                lease.capped = true;
                tracing::warn!(queue = %self.setup.obs.queue, message_id = %lease.message_id, error = %e, "visibility cannot be extended further");
            }
            Err(_) => lease.extension_failed(now),
        }
        // A visibility change waiting for this extension to land may go now.
        self.ready(c.id, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_five_seconds() {
        for failures in 1..30 {
            let p = pause(failures);
            let raw = FIRST_PAUSE
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_PAUSE);
            assert!(p >= raw / 2 && p <= raw, "{failures}: {p:?}");
        }
    }
}
