//! From a handler's verdict to the settlement that carries it out, and when a settlement's call
//! may be queued.

use std::time::Duration;

use tokio::time::Instant;

use super::calls::{ChangeEntry, ChangeOutcome, Op};
use super::lease::{Phase, Settle, State, visibility_budget};
use super::{Decision, Outcome, Settler, Verdict};
use crate::consumer::dead_letter::dead_letter_message;

impl Settler {
    /// A handler's verdict: the message's settlement starts, or, if its lease was lost meanwhile,
    /// it is counted as such.
    pub(super) fn on_decided(&mut self, decision: &Decision, mut verdict: Verdict, now: Instant) {
        let id = decision.id;
        let Some(lease) = self.leases.get_mut(&id) else {
            tracing::error!(id, "a verdict for a message that is not held; ignored");
            return;
        };
        match lease.state {
            State::Lost => return self.finish(id, Outcome::LeaseLost),
            State::Settling(_) => {
                tracing::error!(id, message_id = %lease.message_id, "a message was decided twice; the second verdict is ignored");
                return;
            }
            State::Running => {}
        }
        let (message_id, budget_from) = (lease.message_id.clone(), lease.budget_from);
        // The decision's one line, written only for a verdict that is carried out (a lost lease
        // is reported as such), with the delay it will really get.
        if let Verdict::Retry { delay, .. } = &mut verdict {
            *delay = (*delay).min(visibility_budget(budget_from, now));
        }
        self.setup
            .obs
            .decided(&message_id, decision.attempt, &verdict);
        let op = self.settlement_of(verdict, &message_id, budget_from, now);
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.state = State::Settling(Settle::new(op));
        }
        self.ready(id, now);
    }

    /// What carries out a verdict; counts the failure's cause.
    fn settlement_of(
        &mut self,
        verdict: Verdict,
        message_id: &str,
        budget_from: Instant,
        now: Instant,
    ) -> Op {
        match verdict {
            Verdict::Ack => Op::Delete {
                dead_lettered: false,
            },
            Verdict::Retry { delay, cause, .. } => {
                self.count_cause(cause);
                let delay = delay.min(visibility_budget(budget_from, now));
                Op::Change {
                    timeout: delay,
                    outcome: ChangeOutcome::Retried,
                }
            }
            Verdict::Release(_) => Op::Change {
                timeout: Duration::ZERO,
                outcome: ChangeOutcome::Released,
            },
            Verdict::DeadLetter {
                message,
                reason,
                cause,
                last_receive,
            } => {
                self.count_cause(cause);
                let out = dead_letter_message(&message, &reason, self.setup.dead_letter_fifo);
                if out.note.is_some() {
                    // Not a second warning: the decision's own line was written already.
                    tracing::debug!(queue = %self.setup.obs.queue, message_id, kind = %reason.kind,
                        "the dead-letter reason does not fit on the message; it goes in a note just before it");
                }
                let (out, then) = match out.note {
                    Some(note) => (Box::new(note), Some(Box::new(out.message))),
                    None => (Box::new(out.message), None),
                };
                Op::DeadLetter {
                    out,
                    then,
                    attempt: reason.attempt,
                    last_receive,
                }
            }
        }
    }

    /// Queues a settlement whose turn has come, unless a visibility change would race an
    /// extension in flight (it is queued when the extension lands).
    pub(super) fn ready(&mut self, id: u64, now: Instant) {
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        let State::Settling(s) = &mut lease.state else {
            return;
        };
        let turn = match s.phase {
            Phase::Ready => true,
            Phase::Backoff(at) => at <= now,
            Phase::Queued | Phase::InFlight => false,
        };
        if !turn {
            return;
        }
        if !s.op.keeps_lease() && lease.extending {
            // Waits for the extension to land (`on_extended` queues it then).
            s.phase = Phase::Ready;
            return;
        }
        s.phase = Phase::Queued;
        match &s.op {
            Op::Delete { .. } => self.deletes.push(id, now),
            Op::DeadLetter { .. } => self.dead.push(id, now),
            Op::Change { timeout, .. } => {
                let entry = ChangeEntry {
                    id,
                    receipt: lease.receipt.clone(),
                    timeout: *timeout,
                    extension: false,
                    issued: now,
                };
                self.changes.push(entry, now);
            }
        }
    }
}
