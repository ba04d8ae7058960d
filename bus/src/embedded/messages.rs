//! The messages of one embedded queue under the indexes that keep every call independent of the
//! queue's depth: each operation costs O(log n) in the messages it touches, never a scan.
//!
//! - Every message by sequence number (`by_seq`), in a `BTreeMap`: sends add at one end, and
//!   receives and deletes mostly work at the other, so a deep queue's busy entries stay in cache
//!   (a `HashMap` scattered them: 38 % more per message of a standard queue at depth 100,000).
//! - Receivable messages of a standard queue, oldest first (`ready`).
//! - Invisible messages, delayed or in flight, by the instant they become visible (`waiting`).
//!   A `BTreeSet` rather than a heap or tokio's `DelayQueue`: a delete or a visibility change
//!   removes or re-keys an entry in place (a heap would keep stale entries of deleted messages
//!   until their deadline, and wake long polls for them), the earliest entry is the long poll's
//!   next wake-up, and the store stays a plain function of `now`, with no timer to poll.
//! - FIFO groups with their messages in order and a count of those in flight, and the heads of
//!   the groups that can deliver (`heads`): unlocked, with a visible first message.
//! - Every message by its enqueue instant (`by_age`), so retention drops the oldest first.
//!
//! A message is invisible exactly while it has an entry in `waiting`; [`Messages::advance`] moves
//! the entries that are due, so a caller that wants time to have passed calls it first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;

use super::store::Stored;
use crate::transport::QueueCounts;

/// One FIFO message group.
#[derive(Default)]
struct Group {
    /// Sequence numbers of the group's messages, oldest first.
    seqs: BTreeSet<u64>,
    /// Messages in flight: while there is one, the group delivers nothing.
    in_flight: usize,
    /// The head as listed in `heads`, if it is.
    listed: Option<u64>,
}

/// The FIFO groups of a queue, and the heads of those that can deliver.
#[derive(Default)]
struct Groups {
    /// Every FIFO message has a group (a send must name one, and a FIFO queue's dead-letter queue
    /// is FIFO); a message without one would join group "".
    by_id: HashMap<String, Group>,
    /// The first message of each group that is unlocked and whose first message is visible.
    heads: BTreeSet<u64>,
}

impl Groups {
    /// Lists a group in `heads` if it can deliver, and forgets it once it is empty.
    fn refresh(&mut self, key: &str, is_visible: impl Fn(u64) -> bool) {
        let Some(g) = self.by_id.get_mut(key) else {
            return;
        };
        if let Some(head) = g.listed.take() {
            self.heads.remove(&head);
        }
        let Some(&head) = g.seqs.first() else {
            self.by_id.remove(key);
            return;
        };
        if g.in_flight == 0 && is_visible(head) {
            self.heads.insert(head);
            g.listed = Some(head);
        }
    }

    /// Counts a message of group `key` in or out of flight.
    fn add_in_flight(&mut self, key: &str, delta: isize) {
        if let Some(g) = self.by_id.get_mut(key) {
            g.in_flight = g.in_flight.saturating_add_signed(delta);
        }
    }
}

/// Whether a stored message is visible: it is invisible exactly while it has a `waiting` entry.
fn visible_in(
    by_seq: &BTreeMap<u64, Stored>,
    waiting: &BTreeSet<(Instant, u64)>,
    seq: u64,
) -> bool {
    by_seq
        .get(&seq)
        .is_some_and(|m| !waiting.contains(&(m.visible_at, seq)))
}

/// The messages of one queue and their indexes.
pub(crate) struct Messages {
    fifo: bool,
    by_seq: BTreeMap<u64, Stored>,
    /// Standard queues: the visible messages, oldest first.
    ready: BTreeSet<u64>,
    /// FIFO queues: the groups.
    groups: Groups,
    /// Invisible messages by when they become visible.
    waiting: BTreeSet<(Instant, u64)>,
    /// Entries of `waiting` that are in flight (received), not delayed.
    in_flight: usize,
    /// Every message by when it was first enqueued.
    by_age: BTreeSet<(Instant, u64)>,
}

/// The state of one receive pass.
struct Pass {
    max: usize,
    now: Instant,
    received: usize,
    removed: Vec<Stored>,
}

/// What a receive pass does with a message it reaches.
pub(crate) enum Visit {
    /// Hand it out: the closure has made it received; it is filed again by its new `visible_at`.
    Received,
    /// Take it out of the queue (past `maxReceiveCount`).
    Remove,
}

fn group_key(m: &Stored) -> &str {
    m.group_id.as_deref().unwrap_or_default()
}

impl Messages {
    pub fn new(fifo: bool) -> Self {
        Self {
            fifo,
            by_seq: BTreeMap::new(),
            ready: BTreeSet::new(),
            groups: Groups::default(),
            waiting: BTreeSet::new(),
            in_flight: 0,
            by_age: BTreeSet::new(),
        }
    }

    pub fn get(&self, seq: u64) -> Option<&Stored> {
        self.by_seq.get(&seq)
    }

    /// Adds a message that has never been received (`nonce` is `None`), newer than all others.
    pub fn insert(&mut self, seq: u64, m: Stored, now: Instant) {
        self.by_age.insert((m.enqueued_at, seq));
        if m.visible_at > now {
            self.waiting.insert((m.visible_at, seq));
        } else if !self.fifo {
            self.ready.insert(seq);
        }
        if !self.fifo {
            self.by_seq.insert(seq, m);
            return;
        }
        match self.groups.by_id.get_mut(group_key(&m)) {
            // The newest message of a group does not change its head.
            Some(g) => {
                g.seqs.insert(seq);
                self.by_seq.insert(seq, m);
            }
            None => {
                let key = group_key(&m).to_owned();
                let g = Group {
                    seqs: BTreeSet::from([seq]),
                    ..Group::default()
                };
                self.groups.by_id.insert(key.clone(), g);
                self.by_seq.insert(seq, m);
                self.refresh(&key);
            }
        }
    }

    /// Removes a message from the queue.
    pub fn remove(&mut self, seq: u64) -> Option<Stored> {
        let m = self.unlink(seq)?;
        if self.fifo {
            self.refresh(group_key(&m));
        }
        Some(m)
    }

    /// Removes a message from every index but leaves its group's entry in `heads` as it was, so
    /// a receive pass can go on walking `heads`; the caller refreshes the group.
    fn unlink(&mut self, seq: u64) -> Option<Stored> {
        let m = self.by_seq.remove(&seq)?;
        self.by_age.remove(&(m.enqueued_at, seq));
        let was_in_flight = self.waiting.remove(&(m.visible_at, seq)) && m.nonce.is_some();
        if was_in_flight {
            self.in_flight -= 1;
        }
        if self.fifo {
            if let Some(g) = self.groups.by_id.get_mut(group_key(&m)) {
                g.seqs.remove(&seq);
                g.in_flight -= usize::from(was_in_flight);
            }
        } else {
            self.ready.remove(&seq);
        }
        Some(m)
    }

    fn refresh(&mut self, key: &str) {
        let (by_seq, waiting) = (&self.by_seq, &self.waiting);
        self.groups
            .refresh(key, |seq| visible_in(by_seq, waiting, seq));
    }

    /// Brings the indexes to `now`: drops messages enqueued `retention` or longer ago, and makes
    /// visible the invisible messages that are due. Costs O(log n) per message moved.
    pub fn advance(&mut self, now: Instant, retention: std::time::Duration) {
        while let Some(&(at, seq)) = self.by_age.first() {
            if at + retention > now {
                break;
            }
            self.remove(seq);
        }
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.became_visible(seq);
        }
    }

    /// Files a message that just left `waiting` as visible.
    fn became_visible(&mut self, seq: u64) {
        let Some(m) = self.by_seq.get(&seq) else {
            return;
        };
        if m.nonce.is_some() {
            self.in_flight -= 1;
        }
        if !self.fifo {
            self.ready.insert(seq);
            return;
        }
        let key = group_key(m);
        if m.nonce.is_some() {
            self.groups.add_in_flight(key, -1);
        }
        let (by_seq, waiting) = (&self.by_seq, &self.waiting);
        self.groups
            .refresh(key, |seq| visible_in(by_seq, waiting, seq));
    }

    /// When the next invisible message becomes visible.
    pub fn next_change(&self) -> Option<Instant> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// Sets when an in-flight message becomes visible again.
    pub fn set_visible_at(&mut self, seq: u64, visible_at: Instant, now: Instant) {
        let Some(m) = self.by_seq.get_mut(&seq) else {
            return;
        };
        if !self.waiting.remove(&(m.visible_at, seq)) {
            return;
        }
        m.visible_at = visible_at;
        if visible_at > now {
            self.waiting.insert((visible_at, seq));
        } else {
            self.became_visible(seq);
        }
    }

    /// Walks the receivable messages in the order SQS would hand them out, calling `visit` on each
    /// until `max` were received; returns the messages `visit` removed.
    ///
    /// A FIFO queue skips every group with a message in flight, and within a group stops at the
    /// first invisible message; messages received in this pass do not lock their group until the
    /// pass ends, so one receive can take several messages of a group, in order.
    pub fn receive(
        &mut self,
        max: usize,
        now: Instant,
        mut visit: impl FnMut(u64, &mut Stored) -> Visit,
    ) -> Vec<Stored> {
        let mut pass = Pass {
            max,
            now,
            received: 0,
            removed: Vec::new(),
        };
        if self.fifo {
            self.receive_fifo(&mut pass, &mut visit);
        } else {
            let mut from = 0;
            while pass.received < max {
                let Some(&seq) = self.ready.range(from..).next() else {
                    break;
                };
                from = seq + 1;
                self.take(seq, &mut pass, &mut visit);
            }
        }
        pass.removed
    }

    /// Merges the groups listed in `heads` (unlocked when the pass began) in sequence order,
    /// following each group from its head while its messages are visible.
    fn receive_fifo(&mut self, pass: &mut Pass, visit: &mut impl FnMut(u64, &mut Stored) -> Visit) {
        // Next messages of groups already reached in this pass.
        let mut next_in_group: BTreeSet<u64> = BTreeSet::new();
        let mut from_head = 0;
        let mut touched: Vec<String> = Vec::new();
        while pass.received < pass.max {
            let head = self.groups.heads.range(from_head..).next().copied();
            let seq = match (head, next_in_group.first().copied()) {
                (Some(h), Some(n)) if n < h => {
                    next_in_group.pop_first();
                    n
                }
                (None, Some(n)) => {
                    next_in_group.pop_first();
                    n
                }
                (Some(h), _) => {
                    from_head = h + 1;
                    let m = self.by_seq.get(&h).expect("a listed head is stored");
                    touched.push(group_key(m).to_owned());
                    h
                }
                (None, None) => break,
            };
            let m = self.by_seq.get(&seq).expect("a group's message is stored");
            let after = self
                .groups
                .by_id
                .get(group_key(m))
                .and_then(|g| g.seqs.range(seq + 1..).next().copied());
            self.take(seq, pass, visit);
            if let Some(n) = after
                && visible_in(&self.by_seq, &self.waiting, n)
            {
                next_in_group.insert(n);
            }
        }
        for key in touched {
            self.refresh(&key);
        }
    }

    /// Visits one visible message and files it by what `visit` did.
    fn take(
        &mut self,
        seq: u64,
        pass: &mut Pass,
        visit: &mut impl FnMut(u64, &mut Stored) -> Visit,
    ) {
        let m = self
            .by_seq
            .get_mut(&seq)
            .expect("a receive pass visits stored messages");
        match visit(seq, m) {
            Visit::Remove => pass.removed.extend(self.unlink(seq)),
            Visit::Received => {
                pass.received += 1;
                if m.visible_at > pass.now {
                    self.waiting.insert((m.visible_at, seq));
                    self.in_flight += 1;
                    if self.fifo {
                        // The group's `heads` entry stays until the pass ends.
                        self.groups.add_in_flight(group_key(m), 1);
                    } else {
                        self.ready.remove(&seq);
                    }
                }
            }
        }
    }

    /// Counts as `GetQueueAttributes` reports them, as of the last [`Messages::advance`].
    pub fn counts(&self) -> QueueCounts {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let invisible = self.waiting.len();
        QueueCounts {
            visible: count(self.by_seq.len() - invisible),
            in_flight: count(self.in_flight),
            delayed: count(invisible - self.in_flight),
        }
    }

    /// Removes every message.
    pub fn clear(&mut self) {
        *self = Self::new(self.fifo);
    }
}
