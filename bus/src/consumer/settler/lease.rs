//! One received message's visibility lease: when it runs out, when to extend it and by how much,
//! and when it must be given up. Pure functions of time.
//!
//! The lease is timed from the receive's *response*, less a margin for the round trip, because
//! SQS starts the visibility clock when it hands the message out, which may be late in a long
//! poll. The 12-hour limit is counted conservatively from when the receive was *sent*.
//!
//! A lease is kept until the message is settled: while its handler runs, and after, until the
//! delete (or the dead-letter send and delete, or the visibility change) is confirmed. It is given
//! up `cancel_margin` before it runs out unless an extension has been confirmed by then, so a
//! handler never runs on after the message is visible to another consumer, even while an
//! extension call hangs.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::calls::Op;
use crate::limits::MAX_VISIBILITY_TIMEOUT;
use crate::message::Receipt;

/// Longest allowance for a receive's response to reach us after SQS started the clock.
const RESPONSE_MARGIN: Duration = Duration::from_secs(1);
/// Longest time before the deadline at which an unconfirmed lease is given up.
const CANCEL_MARGIN: Duration = Duration::from_secs(2);
/// After a failed extension, the next try waits this long.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Extensions shorter than this are not worth a call.
const MIN_EXTENSION: Duration = Duration::from_secs(2);

/// What the settler is doing with a message.
#[derive(Debug)]
pub(crate) enum State {
    /// Its handler is running (or waiting to run).
    Running,
    /// The lease was given up while the handler ran: the handler is cancelled, its verdict will
    /// be counted as a lost lease.
    Lost,
    /// The handler decided; the settlement is under way.
    Settling(Settle),
}

/// A settlement under way.
#[derive(Debug)]
pub(crate) struct Settle {
    pub op: Op,
    pub phase: Phase,
    /// Failed tries so far (for the backoff).
    pub failures: u32,
    /// The lease ran out while the call was in flight: its answer decides, no further try.
    pub given_up: bool,
}

impl Settle {
    pub fn new(op: Op) -> Self {
        Self {
            op,
            phase: Phase::Ready,
            failures: 0,
            given_up: false,
        }
    }
}

/// Where a settlement's call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// To be queued for the next batch.
    Ready,
    /// In a pending batch.
    Queued,
    /// The call is on the wire.
    InFlight,
    /// A try failed; the next waits until then.
    Backoff(Instant),
}

/// What the settler knows about a message it received and has not yet settled.
pub(crate) struct Lease {
    pub message_id: String,
    pub receipt: Receipt,
    /// When the receive was sent: the 12-hour limit counts from (just after) here.
    pub budget_from: Instant,
    /// When the message becomes visible again unless extended (a conservative estimate).
    pub deadline: Instant,
    pub visibility: Duration,
    /// An extension call is in flight.
    pub extending: bool,
    /// The 12-hour limit allows no further extension.
    pub capped: bool,
    /// No extension is tried before this (after a failed one).
    pub retry_after: Option<Instant>,
    /// The handler's cancellation.
    pub cancel: CancellationToken,
    pub state: State,
    /// Its place under the limit of messages held until settled (held, never read).
    pub held: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The handler's view of `deadline`, moved on each confirmed extension.
    pub view: Option<watch::Sender<Instant>>,
}

/// When a lease received at `responded_at` runs out unless extended: the visibility timeout less
/// a margin for the receive's response to reach us.
pub(crate) fn first_deadline(responded_at: Instant, visibility: Duration) -> Instant {
    responded_at + visibility - RESPONSE_MARGIN.min(visibility / 10)
}

/// What to do about a lease now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Ask for this visibility timeout from now.
    Extend(Duration),
    /// Give the lease up: it cannot be kept.
    GiveUp(&'static str),
    /// Nothing yet.
    Wait,
}

impl Lease {
    /// A lease for a message whose receive was sent at `requested_at` and answered at
    /// `responded_at`, with `visibility`.
    pub fn new(
        message_id: String,
        receipt: Receipt,
        requested_at: Instant,
        responded_at: Instant,
        visibility: Duration,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            message_id,
            receipt,
            budget_from: requested_at,
            deadline: first_deadline(responded_at, visibility),
            visibility,
            extending: false,
            capped: false,
            retry_after: None,
            cancel,
            state: State::Running,
            held: None,
            view: None,
        }
    }

    /// How long before the deadline an unconfirmed lease is given up.
    pub fn cancel_margin(&self) -> Duration {
        CANCEL_MARGIN.min(self.visibility / 5)
    }

    /// When the lease is given up unless an extension is confirmed first.
    pub fn give_up_at(&self) -> Instant {
        self.deadline
            .checked_sub(self.cancel_margin())
            .unwrap_or(self.deadline)
    }

    /// By when a call for this lease must have answered: before the lease is given up, or, for
    /// the last try of a settlement given up, before the lease runs out.
    pub fn calls_by(&self) -> Instant {
        match &self.state {
            State::Settling(s) if s.given_up => self.deadline,
            _ => self.give_up_at(),
        }
    }

    /// Whether the lease may be extended in its state: not once it is lost, and not while a
    /// visibility change of its own settlement is queued or on the wire (the two would race).
    fn extendable(&self) -> bool {
        match &self.state {
            State::Running => true,
            State::Lost => false,
            State::Settling(s) => {
                s.op.keeps_lease() || !matches!(s.phase, Phase::Queued | Phase::InFlight)
            }
        }
    }

    /// Whether an extension may be sent in this state (not before `retry_after`, though).
    fn may_extend(&self) -> bool {
        !self.extending && !self.capped && self.extendable()
    }

    /// From when the lease is within `part` quarters of its visibility of running out, and past
    /// any pause after a failed extension: where [`Lease::within`] turns true. (A deadline too
    /// close to the clock's origin to subtract from counts from the receive, which is earlier
    /// than any `now`; it cannot happen with a deadline set from a receive.)
    fn within_from(&self, part: u32) -> Instant {
        let due = self
            .deadline
            .checked_sub(self.visibility * part / 4)
            .unwrap_or(self.budget_from);
        self.retry_after.map_or(due, |r| r.max(due))
    }

    /// When an extension is due.
    fn extension_due(&self) -> Instant {
        self.within_from(2)
    }

    /// From when the lease may join an extension call sent for another (within three quarters),
    /// if it may be extended at all.
    pub fn coalesce_from(&self) -> Option<Instant> {
        self.may_extend().then(|| self.within_from(3))
    }

    /// Whether a settlement is ready to be queued, which the settler tries on every turn (it
    /// waits there while an extension of its own lease is on the wire).
    pub fn settlement_ready(&self) -> bool {
        matches!(&self.state, State::Settling(s) if s.phase == Phase::Ready)
    }

    /// When this lease next needs the settler, if ever.
    pub fn next_action(&self) -> Option<Instant> {
        if matches!(self.state, State::Lost) {
            return None;
        }
        // Once a settlement is given up its last call is on the wire or queued: nothing to wake for.
        let give_up = match &self.state {
            State::Settling(s) if s.given_up => None,
            _ => Some(self.give_up_at()),
        };
        let extend = self.may_extend().then(|| self.extension_due());
        let backoff = match &self.state {
            State::Settling(Settle {
                phase: Phase::Backoff(at),
                ..
            }) => Some(*at),
            _ => None,
        };
        [give_up, extend, backoff].into_iter().flatten().min()
    }

    /// Whether the lease may be extended now and is within `part` quarters of its visibility of
    /// running out.
    pub fn within(&self, now: Instant, part: u32) -> bool {
        self.may_extend()
            && self.retry_after.is_none_or(|r| r <= now)
            && self.deadline <= now + self.visibility * part / 4
    }

    /// What to do now: give up a lease that is about to run out unconfirmed, or extend it by the
    /// visibility timeout (by what the 12-hour limit leaves, the last time).
    pub fn plan(&self, now: Instant, coalesce: bool) -> Plan {
        if matches!(self.state, State::Lost) {
            return Plan::Wait;
        }
        if now >= self.give_up_at() {
            return Plan::GiveUp(if self.capped {
                "the 12-hour visibility limit is reached"
            } else if self.extending {
                "an extension did not answer before the lease ran out"
            } else {
                "the lease ran out before it could be extended"
            });
        }
        let due = self.within(now, 2) || (coalesce && self.within(now, 3));
        if !due {
            return Plan::Wait;
        }
        let budget = whole_seconds(
            visibility_budget(self.budget_from, now).saturating_sub(Duration::from_secs(1)),
        );
        if budget >= self.visibility {
            Plan::Extend(self.visibility)
        } else if budget >= MIN_EXTENSION {
            Plan::Extend(budget)
        } else {
            Plan::GiveUp("the 12-hour visibility limit is reached")
        }
    }

    /// Whether a turn at `now` acts on this lease: extends it, gives it up, or queues its
    /// settlement (`coalesce`: some extension is due, so leases within three quarters join its
    /// call). What the lease index must never miss.
    #[cfg(any(test, debug_assertions))]
    pub fn needs_turn(&self, now: Instant, coalesce: bool) -> bool {
        let acts = match self.plan(now, coalesce) {
            Plan::Extend(_) => true,
            Plan::GiveUp(_) => match &self.state {
                State::Running => true,
                State::Settling(s) => !s.given_up,
                State::Lost => false,
            },
            Plan::Wait => false,
        };
        acts || matches!(&self.state, State::Settling(s)
            if s.phase == Phase::Ready || matches!(s.phase, Phase::Backoff(at) if at <= now))
    }

    /// Records a granted extension that was requested at `issued`.
    pub fn extended(&mut self, issued: Instant, timeout: Duration) {
        self.extending = false;
        self.retry_after = None;
        self.deadline = self.deadline.max(issued + timeout);
        if let Some(view) = &self.view {
            view.send_if_modified(|seen| std::mem::replace(seen, self.deadline) != self.deadline);
        }
        if timeout < self.visibility {
            // Whatever the limit left was granted: there will be no further extension.
            self.capped = true;
        }
    }

    /// Records a failed extension that may succeed later.
    pub fn extension_failed(&mut self, now: Instant) {
        self.extending = false;
        self.retry_after = Some(now + RETRY_PAUSE);
    }
}

/// What is left of the 12 hours a message may stay invisible after it was received.
pub(crate) fn visibility_budget(budget_from: Instant, now: Instant) -> Duration {
    (budget_from + MAX_VISIBILITY_TIMEOUT).saturating_duration_since(now)
}

fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// A lease received (and answered) at `at` with `visibility` seconds, for tests.
#[cfg(test)]
pub(super) fn lease_at(at: Instant, visibility: u64) -> Lease {
    Lease::new(
        "m".into(),
        Receipt::new("r"),
        at,
        at,
        Duration::from_secs(visibility),
        CancellationToken::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn lease(at: Instant, visibility: u64) -> Lease {
        lease_at(at, visibility)
    }

    #[test]
    fn the_lease_counts_from_the_response_less_a_margin() {
        let t = Instant::now();
        let l = Lease::new(
            "m".into(),
            Receipt::new("r"),
            t,
            t + S(12),
            S(10),
            CancellationToken::new(),
        );
        assert_eq!(l.deadline, t + S(21), "answered 12 s into the poll");
        assert_eq!(l.give_up_at(), t + S(19));
        assert_eq!(l.plan(t + S(12), false), Plan::Wait);
        let short = lease(t, 2);
        assert_eq!(short.deadline, t + Duration::from_millis(1800));
        assert_eq!(short.cancel_margin(), Duration::from_millis(400));
    }

    #[test]
    fn extends_by_the_visibility_at_half_time() {
        let t = Instant::now();
        let l = lease(t, 60);
        // Deadline 59 s (1 s response margin): half-time at 29 s.
        assert_eq!(l.next_action(), Some(t + S(29)));
        assert_eq!(l.plan(t + S(28), false), Plan::Wait);
        assert!(l.within(t + S(29), 2));
        assert!(l.within(t + S(14), 3), "coalescing reaches three quarters");
        assert_eq!(l.plan(t + S(14), true), Plan::Extend(S(60)));
        assert_eq!(l.plan(t + S(29), false), Plan::Extend(S(60)));
    }

    #[test]
    fn an_unanswered_extension_gives_the_lease_up_before_it_runs_out() {
        let t = Instant::now();
        let mut l = lease(t, 10);
        l.extending = true;
        assert_eq!(l.plan(t + S(6), false), Plan::Wait);
        assert!(
            matches!(l.plan(t + S(7), false), Plan::GiveUp(why) if why.contains("did not answer"))
        );
    }

    #[test]
    fn the_last_extension_takes_what_the_twelve_hours_leave_then_the_lease_is_given_up() {
        let t = Instant::now();
        let mut l = lease(t, 60);
        let near = t + MAX_VISIBILITY_TIMEOUT - S(40);
        l.deadline = near + S(30);
        // 40 s left, less 1 s of safety.
        assert_eq!(l.plan(near, false), Plan::Extend(S(39)));
        l.extending = true;
        l.extended(near, S(39));
        assert!(l.capped);
        assert!(
            !l.within(near + S(30), 4),
            "a capped lease is never extended again"
        );
        assert_eq!(l.next_action(), Some(near + S(39) - S(2)));
        assert_eq!(l.plan(near + S(36), false), Plan::Wait);
        assert!(matches!(l.plan(near + S(37), false), Plan::GiveUp(_)));
        let budget_gone = t + MAX_VISIBILITY_TIMEOUT - S(2);
        let mut l2 = lease(t, 60);
        l2.deadline = budget_gone + S(30);
        assert!(matches!(l2.plan(budget_gone, false), Plan::GiveUp(_)));
    }

    #[test]
    fn a_failed_extension_pauses_before_the_next_try() {
        let t = Instant::now();
        let mut l = lease(t, 10);
        l.extending = true;
        l.extension_failed(t + S(5));
        assert!(!l.within(t + S(5), 2));
        assert!(l.within(t + S(6), 2));
        assert_eq!(l.next_action(), Some(t + S(6)));
    }
}
