//! Adaptive polling: how many of a consumer's long-poll loops run, decided from what each
//! receive brings back, as Lambda's event source mappings scale their SQS pollers.
//!
//! A full batch says the queue holds at least a batch more: another loop would find messages
//! too. A partial or empty batch says one loop already takes everything there is: another
//! would only split the same messages into more receives (more requests per message, no more
//! throughput). So the consumer adds a loop after [`FULL_TO_SCALE_UP`] full receives in a row
//! and parks one after any partial, empty or failed receive, within `min_pollers..=pollers`.
//! Loop `k` runs while more than `k` loops are active; a parked loop sends nothing.

use std::sync::Arc;

use tokio::sync::watch;

use super::observe::Observer;

/// Full receives in a row before one more loop starts: a single full batch may be a burst
/// the running loops already drained; two in a row show the backlog lasts. Reaching `pollers`
/// from one takes two round trips per loop added.
pub(crate) const FULL_TO_SCALE_UP: u32 = 2;

/// What a receive told about the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The receive failed as a whole.
    Failed,
    /// It asked for `asked` messages and got `got`.
    Got { asked: usize, got: usize },
}

/// The pure state of the scaling: active loops within bounds, and the current run of full
/// receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scale {
    pub min: usize,
    pub max: usize,
    pub active: usize,
    full_streak: u32,
}

impl Scale {
    /// `min` loops active, at most `max` (`1 <= min <= max`, checked by the configuration).
    pub fn new(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            active: min,
            full_streak: 0,
        }
    }

    /// Takes in one receive's answer, where `batch` is the most a receive asks for.
    ///
    /// A receive that asked for less than a batch (the in-flight limit left fewer slots) and got
    /// all of it says nothing about the queue: the consumer, not the queue, was the limit.
    pub fn record(&mut self, batch: usize, answer: Answer) {
        match answer {
            Answer::Got { asked, got } if got >= asked && asked >= batch => {
                self.full_streak += 1;
                if self.full_streak >= FULL_TO_SCALE_UP {
                    self.full_streak = 0;
                    self.active = (self.active + 1).min(self.max);
                }
            }
            Answer::Got { asked, got } if got >= asked => {}
            Answer::Got { .. } | Answer::Failed => {
                self.full_streak = 0;
                self.active = self.active.saturating_sub(1).max(self.min);
            }
        }
    }
}

/// The scaling shared by a consumer's loops: each receive's answer goes in, and each loop asks
/// whether it may run.
pub(crate) struct Scaler {
    scale: watch::Sender<Scale>,
    batch: usize,
    obs: Arc<Observer>,
}

impl Drop for Scaler {
    /// The consumer stopped: its loops leave the gauge.
    fn drop(&mut self) {
        self.obs.pollers_active(self.scale.borrow().active, 0);
    }
}

impl Scaler {
    /// `min..=max` loops whose receives ask for `batch` messages at most; `min` start.
    pub fn new(min: usize, max: usize, batch: usize, obs: Arc<Observer>) -> Self {
        let scale = Scale::new(min, max);
        obs.pollers_active(0, scale.active);
        Self {
            scale: watch::Sender::new(scale),
            batch,
            obs,
        }
    }

    /// Loops that run now.
    pub fn active(&self) -> usize {
        self.scale.borrow().active
    }

    /// Whether loop `index` may poll now.
    pub fn runs(&self, index: usize) -> bool {
        index < self.active()
    }

    /// Takes in one receive's answer; wakes a parked loop when it adds one.
    pub fn record(&self, answer: Answer) {
        self.scale.send_if_modified(|scale| {
            let before = scale.active;
            scale.record(self.batch, answer);
            let changed = scale.active != before;
            if changed {
                // Under the channel's lock, so the gauge follows the changes in order.
                self.obs.pollers_active(before, scale.active);
            }
            changed
        });
    }

    /// Waits until loop `index` must park.
    pub async fn until_parked(&self, index: usize) {
        let mut rx = self.scale.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|scale| index >= scale.active).await;
    }

    /// Waits until loop `index` may poll.
    pub async fn until_runs(&self, index: usize) {
        let mut rx = self.scale.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|scale| index < scale.active).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: Answer = Answer::Got { asked: 10, got: 10 };

    fn got(asked: usize, got: usize) -> Answer {
        Answer::Got { asked, got }
    }

    fn after(mut scale: Scale, answers: &[Answer]) -> Scale {
        for a in answers {
            scale.record(10, *a);
        }
        scale
    }

    #[test]
    fn starts_at_the_minimum() {
        assert_eq!(Scale::new(1, 4).active, 1);
        assert_eq!(Scale::new(3, 4).active, 3);
    }

    #[test]
    fn two_full_receives_in_a_row_add_one_loop_up_to_the_maximum() {
        let s = Scale::new(1, 3);
        assert_eq!(after(s, &[FULL]).active, 1, "one full batch may be a burst");
        assert_eq!(after(s, &[FULL, FULL]).active, 2);
        assert_eq!(after(s, &[FULL; 3]).active, 2, "the run starts again");
        assert_eq!(after(s, &[FULL; 4]).active, 3);
        assert_eq!(after(s, &[FULL; 40]).active, 3, "never above the maximum");
    }

    #[test]
    fn a_partial_empty_or_failed_receive_parks_one_loop_down_to_the_minimum() {
        let full = after(Scale::new(2, 4), &[FULL; 4]);
        assert_eq!(full.active, 4);
        for answer in [got(10, 9), got(10, 0), got(3, 2), got(1, 0), Answer::Failed] {
            assert_eq!(after(full, &[answer]).active, 3, "{answer:?}");
            assert_eq!(
                after(full, &[answer; 5]).active,
                2,
                "never below the minimum"
            );
        }
    }

    #[test]
    fn a_partial_receive_breaks_the_run_of_full_ones() {
        let s = Scale::new(1, 4);
        assert_eq!(after(s, &[FULL, got(10, 4), FULL]).active, 1);
        assert_eq!(after(s, &[FULL, Answer::Failed, FULL]).active, 1);
    }

    #[test]
    fn a_receive_limited_by_free_slots_says_nothing() {
        let s = Scale::new(1, 4);
        let limited = [got(4, 4), got(9, 9), got(1, 1)];
        for a in limited {
            assert_eq!(after(s, &[a, a, a]).active, 1, "{a:?} adds no loop");
            assert_eq!(after(s, &[FULL, a, FULL]).active, 2, "{a:?} keeps the run");
        }
        let two = after(s, &[FULL, FULL]);
        assert_eq!(after(two, &limited).active, 2, "and parks none");
    }

    #[test]
    fn more_than_asked_counts_as_full() {
        // A transport bug, but not a sign of an empty queue.
        assert_eq!(after(Scale::new(1, 2), &[got(10, 11), FULL]).active, 2);
    }

    #[test]
    fn a_batch_smaller_than_ten_is_full_at_its_own_size() {
        let mut s = Scale::new(1, 2);
        s.record(5, got(5, 5));
        s.record(5, got(5, 5));
        assert_eq!(s.active, 2);
        s.record(5, got(5, 4));
        assert_eq!(s.active, 1);
    }

    #[test]
    fn fixed_bounds_never_move() {
        let s = Scale::new(3, 3);
        assert_eq!(after(s, &[FULL; 10]).active, 3);
        assert_eq!(after(s, &[Answer::Failed; 10]).active, 3);
    }
}
