//! One in-flight message's visibility lease: when to extend it, by how much, and when the
//! 12-hour limit means the handler must be stopped. Pure functions of time.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Verdict;
use crate::limits::MAX_VISIBILITY_TIMEOUT;
use crate::message::Receipt;

/// A handler is cancelled this long before a lease that can no longer be extended runs out, so
/// the message is not handled twice.
pub(super) const CANCEL_MARGIN: Duration = Duration::from_secs(2);
/// After a failed extension, the next try waits this long (the call itself already retried).
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Extensions shorter than this are not worth a call.
const MIN_EXTENSION: Duration = Duration::from_secs(2);

/// What the settler knows about a message it has received and not yet settled.
pub(super) struct Lease {
    pub message_id: String,
    pub receipt: Receipt,
    /// When the receive was sent: SQS's 12-hour limit counts from (just after) here.
    pub received_at: Instant,
    /// When the message becomes visible again unless extended.
    pub deadline: Instant,
    pub visibility: Duration,
    /// An extension call is in flight.
    pub extending: bool,
    /// The lease is gone: the handler is cancelled and the verdict will be ignored.
    pub lost: bool,
    /// The 12-hour limit allows no further extension: the handler is stopped before `deadline`.
    pub capped: bool,
    /// No extension is tried before this (after a failed one).
    pub retry_after: Option<Instant>,
    /// A verdict waiting for the extension in flight to land.
    pub deferred: Option<Verdict>,
    pub cancel: CancellationToken,
}

/// What to do about a lease now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Ask for this visibility timeout from now.
    Extend(Duration),
    /// Stop the handler: the lease cannot be kept.
    Stop(&'static str),
    /// Nothing yet.
    Wait,
}

impl Lease {
    pub fn new(
        message_id: String,
        receipt: Receipt,
        received_at: Instant,
        visibility: Duration,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            message_id,
            receipt,
            received_at,
            deadline: received_at + visibility,
            visibility,
            extending: false,
            lost: false,
            capped: false,
            retry_after: None,
            deferred: None,
            cancel,
        }
    }

    /// When this lease next needs the settler, if ever.
    pub fn next_action(&self) -> Option<Instant> {
        if self.extending || self.lost {
            return None;
        }
        if self.capped {
            return Some(
                self.deadline
                    .checked_sub(CANCEL_MARGIN)
                    .unwrap_or(self.deadline),
            );
        }
        let due = self
            .deadline
            .checked_sub(self.visibility / 2)
            .unwrap_or(self.deadline);
        Some(self.retry_after.map_or(due, |r| r.max(due)))
    }

    /// Whether the lease is within `part` quarters of its visibility of running out (and may be
    /// extended now).
    pub fn within(&self, now: Instant, part: u32) -> bool {
        !self.extending
            && !self.lost
            && !self.capped
            && self.retry_after.is_none_or(|r| r <= now)
            && self.deadline <= now + self.visibility * part / 4
    }

    /// What to do now: extend by the visibility timeout, by what the 12-hour limit leaves (the
    /// last extension), or stop the handler.
    pub fn plan(&self, now: Instant) -> Plan {
        if self.lost || self.extending {
            return Plan::Wait;
        }
        if self.capped {
            let stop_at = self
                .deadline
                .checked_sub(CANCEL_MARGIN)
                .unwrap_or(self.deadline);
            return if now >= stop_at {
                Plan::Stop("the 12-hour visibility limit is reached")
            } else {
                Plan::Wait
            };
        }
        if now >= self.deadline {
            return Plan::Stop("the lease expired before it could be extended");
        }
        let budget = whole_seconds(
            visibility_budget(self.received_at, now).saturating_sub(Duration::from_secs(1)),
        );
        if budget >= self.visibility {
            Plan::Extend(self.visibility)
        } else if budget >= MIN_EXTENSION {
            Plan::Extend(budget)
        } else {
            Plan::Stop("the 12-hour visibility limit is reached")
        }
    }

    /// Records a granted extension that was requested at `issued`.
    pub fn extended(&mut self, issued: Instant, timeout: Duration) {
        self.extending = false;
        self.retry_after = None;
        self.deadline = issued + timeout;
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

    /// Gives the lease up: the handler is cancelled; its verdict will be ignored.
    pub fn lose(&mut self) {
        self.lost = true;
        self.cancel.cancel();
    }
}

/// What is left of the 12 hours a message may stay invisible after it was received.
pub(super) fn visibility_budget(received_at: Instant, now: Instant) -> Duration {
    (received_at + MAX_VISIBILITY_TIMEOUT).saturating_duration_since(now)
}

fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn lease(at: Instant, visibility: u64) -> Lease {
        Lease::new(
            "m".into(),
            Receipt::new("r"),
            at,
            S(visibility),
            CancellationToken::new(),
        )
    }

    #[test]
    fn extends_by_the_visibility_at_half_time() {
        let t = Instant::now();
        let l = lease(t, 60);
        assert_eq!(l.next_action(), Some(t + S(30)));
        assert!(!l.within(t + S(29), 2));
        assert!(l.within(t + S(30), 2));
        assert!(l.within(t + S(15), 3), "coalescing reaches three quarters");
        assert_eq!(l.plan(t + S(30)), Plan::Extend(S(60)));
    }

    #[test]
    fn the_last_extension_takes_what_the_twelve_hours_leave_then_the_handler_stops() {
        let t = Instant::now();
        let mut l = lease(t, 60);
        let near = t + MAX_VISIBILITY_TIMEOUT - S(40);
        l.deadline = near + S(30);
        // 40 s left, less 1 s of safety.
        assert_eq!(l.plan(near), Plan::Extend(S(39)));
        l.extending = true;
        l.extended(near, S(39));
        assert!(l.capped);
        assert!(
            !l.within(near + S(30), 4),
            "a capped lease is never extended again"
        );
        assert_eq!(l.next_action(), Some(near + S(39) - CANCEL_MARGIN));
        assert_eq!(l.plan(near + S(36)), Plan::Wait);
        assert!(matches!(l.plan(near + S(37)), Plan::Stop(_)));
        let budget_gone = t + MAX_VISIBILITY_TIMEOUT - S(2);
        let mut l2 = lease(t, 60);
        l2.deadline = budget_gone + S(1);
        assert!(matches!(l2.plan(budget_gone), Plan::Stop(_)));
    }

    #[test]
    fn a_failed_extension_pauses_before_the_next_try_and_an_expired_lease_stops() {
        let t = Instant::now();
        let mut l = lease(t, 10);
        l.extending = true;
        l.extension_failed(t + S(5));
        assert!(!l.within(t + S(5), 2));
        assert_eq!(l.next_action(), Some(t + S(6)));
        assert!(l.within(t + S(6), 2));
        assert!(matches!(l.plan(t + S(10)), Plan::Stop(_)));
    }
}
