//! The settler's leases, with the times they next need the settler kept in order, so a turn
//! visits the leases that are due rather than every lease held.
//!
//! Every change to a lease goes through [`Leases::get_mut`] (or `insert`), which marks it; the
//! marked leases are re-indexed before the index is read. A lease is indexed under:
//!
//! - its next action ([`Lease::next_action`]): an extension due, the time it is given up, the end
//!   of a settlement's backoff;
//! - the time it may join an extension call sent for another ([`Lease::coalesce_from`]);
//! - and, while its settlement is ready to be queued, in a set visited on every turn.
//!
//! Most leases are settled within a second of their receive, long before they first need the
//! settler. A new lease whose first need is more than [`YOUNG`] away is therefore only queued in
//! receive order, which costs less than two entries in the ordered sets and their removal; it is
//! indexed when `YOUNG` has passed, or at once when a change brings its first need closer.
//!
//! A lease the settler would act on in a turn is always in one of them (checked on every turn in
//! debug builds against a walk of all leases, so every test of the consumer checks the index).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::lease::Lease;

/// Where one lease is indexed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Keys {
    action: Option<Instant>,
    coalesce: Option<Instant>,
    ready: bool,
}

/// How long a new lease may go unindexed (see the module's note).
const YOUNG: Duration = Duration::from_secs(1);

impl Keys {
    fn of(lease: &Lease) -> Self {
        Self {
            action: lease.next_action(),
            coalesce: lease.coalesce_from(),
            ready: lease.settlement_ready(),
        }
    }

    /// Whether a lease with these keys needs no turn up to and including `t`.
    fn quiet_until(&self, t: Instant) -> bool {
        !self.ready && self.action.is_none_or(|a| a > t) && self.coalesce.is_none_or(|c| c > t)
    }
}

struct Slot {
    lease: Lease,
    /// Where it is indexed now (stale while `marked`; nowhere while young).
    keys: Keys,
    /// Changed since it was last indexed.
    marked: bool,
    /// Not indexed: it needs no turn up to this time, when it is indexed (its entry in the
    /// young queue).
    young_until: Option<Instant>,
}

/// What a turn must look at.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Due {
    /// The leases to visit, in id order, each once.
    pub ids: Vec<u64>,
    /// Some lease's extension is due, so those within three quarters join its call.
    pub coalesce: bool,
}

#[derive(Default)]
pub(super) struct Leases {
    /// By the engine's own ids (not input), so a fast hash is safe.
    slots: HashMap<u64, Slot, foldhash::fast::FixedState>,
    marked: Vec<u64>,
    by_action: BTreeSet<(Instant, u64)>,
    by_coalesce: BTreeSet<(Instant, u64)>,
    ready: BTreeSet<u64>,
    /// Young leases in the order they are to be indexed (and entries of leases since removed or
    /// indexed early, dropped as they reach the front).
    young: VecDeque<(Instant, u64)>,
}

impl Leases {
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, id: &u64) -> Option<&Lease> {
        self.slots.get(id).map(|s| &s.lease)
    }

    /// The lease, to change: it is re-indexed before the index is next read.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Lease> {
        let slot = self.slots.get_mut(id)?;
        if !slot.marked {
            slot.marked = true;
            self.marked.push(*id);
        }
        Some(&mut slot.lease)
    }

    /// Holds a lease received by `now`.
    pub fn insert(&mut self, id: u64, lease: Lease, now: Instant) {
        if let Some(old) = self.slots.remove(&id) {
            self.unindex(id, old.keys);
        }
        // The young queue stays in time order however `now` is passed.
        let until = self
            .young
            .back()
            .map_or(now + YOUNG, |(last, _)| (*last).max(now + YOUNG));
        let young = Keys::of(&lease).quiet_until(until);
        let slot = Slot {
            lease,
            keys: Keys::default(),
            marked: !young,
            young_until: young.then_some(until),
        };
        self.slots.insert(id, slot);
        if young {
            self.young.push_back((until, id));
        } else {
            self.marked.push(id);
        }
    }

    pub fn remove(&mut self, id: &u64) -> Option<Lease> {
        let slot = self.slots.remove(id)?;
        self.unindex(*id, slot.keys);
        Some(slot.lease)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    #[cfg(any(test, debug_assertions))]
    pub fn values(&self) -> impl Iterator<Item = (u64, &Lease)> {
        self.slots.iter().map(|(id, s)| (*id, &s.lease))
    }

    /// Brings the index up to date with every lease changed since.
    pub fn reindex(&mut self) {
        // Drained and put back, so the list keeps its capacity from turn to turn (nothing marks
        // a lease in between).
        let mut marked = std::mem::take(&mut self.marked);
        for id in marked.drain(..) {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue; // removed since
            };
            slot.marked = false;
            let (old, new) = (slot.keys, Keys::of(&slot.lease));
            if let Some(until) = slot.young_until {
                if new.quiet_until(until) {
                    continue;
                }
                slot.young_until = None; // a change brought its first need closer
            }
            if old == new {
                continue;
            }
            slot.keys = new;
            self.unindex(id, old);
            if let Some(at) = new.action {
                self.by_action.insert((at, id));
            }
            if let Some(at) = new.coalesce {
                self.by_coalesce.insert((at, id));
            }
            if new.ready {
                self.ready.insert(id);
            }
        }
        self.marked = marked;
    }

    fn unindex(&mut self, id: u64, keys: Keys) {
        if let Some(at) = keys.action {
            self.by_action.remove(&(at, id));
        }
        if let Some(at) = keys.coalesce {
            self.by_coalesce.remove(&(at, id));
        }
        if keys.ready {
            self.ready.remove(&id);
        }
    }

    /// Drops the young queue's entries that no longer stand for a young lease, and, when `now`
    /// is given, indexes the young leases whose time has come.
    fn tend_young(&mut self, now: Option<Instant>) {
        while let Some(&(until, id)) = self.young.front() {
            match self.slots.get_mut(&id) {
                Some(slot) if slot.young_until == Some(until) => {
                    if now.is_none_or(|now| until > now) {
                        break;
                    }
                    slot.young_until = None;
                    if !slot.marked {
                        slot.marked = true;
                        self.marked.push(id);
                    }
                }
                _ => {}
            }
            self.young.pop_front();
        }
    }

    /// When the settler must next look at its leases, if ever: no lease needs it before then.
    /// (It may be earlier than any lease needs: a young lease's indexing.)
    pub fn next_action(&mut self) -> Option<Instant> {
        self.reindex();
        self.tend_young(None);
        let indexed = self.by_action.first().map(|(at, _)| *at);
        let young = self.young.front().map(|(until, _)| *until);
        let first = indexed.into_iter().chain(young).min();
        #[cfg(debug_assertions)]
        if let Some(first) = first {
            let walked = self.values().filter_map(|(_, l)| l.next_action()).min();
            assert!(
                walked.is_none_or(|w| w >= first),
                "a lease needs the settler at {walked:?}, before the index's {first:?}"
            );
        }
        #[cfg(debug_assertions)]
        if first.is_none() {
            assert!(self.values().all(|(_, l)| l.next_action().is_none()));
        }
        first
    }

    /// The leases a turn at `now` must visit: those whose next action is due, those with a
    /// settlement ready to queue, and, when some extension is due, those that may join its call.
    pub fn due(&mut self, now: Instant) -> Due {
        self.tend_young(Some(now));
        self.reindex();
        let upto = (now, u64::MAX);
        let mut ids: Vec<u64> = self.by_action.range(..=upto).map(|(_, id)| *id).collect();
        let coalesce = ids
            .iter()
            .filter_map(|id| self.get(id))
            .any(|l| l.within(now, 2));
        if coalesce {
            ids.extend(self.by_coalesce.range(..=upto).map(|(_, id)| *id));
        }
        ids.extend(self.ready.iter().copied());
        ids.sort_unstable();
        ids.dedup();
        let due = Due { ids, coalesce };
        #[cfg(debug_assertions)]
        self.check(now, &due);
        due
    }

    /// Debug builds: every lease a walk of all would act on is in `due`, and `coalesce` is what
    /// the walk would find.
    #[cfg(debug_assertions)]
    fn check(&self, now: Instant, due: &Due) {
        let coalesce = self.values().any(|(_, l)| l.within(now, 2));
        assert_eq!(
            due.coalesce, coalesce,
            "the lease index missed a due extension"
        );
        let queued: std::collections::HashSet<_> = self.young.iter().collect();
        for (id, slot) in &self.slots {
            if let Some(until) = slot.young_until {
                assert!(until > now && Keys::of(&slot.lease).quiet_until(until));
                assert!(queued.contains(&(until, *id)), "young {id} is not queued");
            }
        }
        for (id, lease) in self.values() {
            if lease.needs_turn(now, coalesce) {
                assert!(
                    due.ids.binary_search(&id).is_ok(),
                    "the lease index missed lease {id}: {:?}",
                    self.slots[&id].keys
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::calls::Op;
    use super::super::lease::{Phase, Settle, State, lease_at as lease};
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// What a walk of every lease finds at `now`: the leases it acts on, and whether it
    /// coalesces.
    fn walk(leases: &Leases, now: Instant) -> (Vec<u64>, bool) {
        let coalesce = leases.values().any(|(_, l)| l.within(now, 2));
        let mut ids: Vec<u64> = leases
            .values()
            .filter(|(_, l)| l.needs_turn(now, coalesce))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        (ids, coalesce)
    }

    #[test]
    fn a_turn_visits_the_due_leases_and_not_the_others() {
        let t = Instant::now();
        let mut leases = Leases::default();
        // Visibility 60 s: deadline 59 s, extension due at 29 s, joinable from 14 s.
        leases.insert(1, lease(t, 60), t);
        leases.insert(2, lease(t + S(10), 60), t + S(10));
        leases.insert(3, lease(t + S(20), 60), t + S(20));
        // Young until a second after each receive: the settler looks then, finds nothing due.
        assert_eq!(leases.next_action(), Some(t + S(1)));
        assert_eq!(leases.due(t + S(21)), Due::default());
        assert!(leases.young.is_empty(), "all indexed");
        assert_eq!(leases.next_action(), Some(t + S(29)));
        assert_eq!(leases.due(t + S(28)), Due::default());
        // Lease 1 is due; lease 2 (within three quarters from 24 s) joins it; 3 does not.
        let due = leases.due(t + S(29));
        assert_eq!(due.ids, vec![1, 2]);
        assert!(due.coalesce);
        assert_eq!(walk(&leases, t + S(29)).0, vec![1, 2]);
    }

    #[test]
    fn a_changed_lease_is_indexed_again_and_a_removed_one_is_gone() {
        let t = Instant::now();
        let mut leases = Leases::default();
        leases.insert(1, lease(t, 60), t);
        leases.insert(2, lease(t, 60), t);
        leases.get_mut(&1).expect("held").extending = true;
        // Lease 1's extension is on the wire: it next needs the settler to give it up (57 s).
        assert_eq!(leases.due(t + S(29)).ids, vec![2]);
        leases.get_mut(&2).expect("held").extended(t + S(29), S(60));
        assert_eq!(leases.next_action(), Some(t + S(57)));
        assert!(leases.remove(&1).is_some());
        // Lease 2 was extended to 89 s: due again at 59 s, given up at 87 s.
        assert_eq!(leases.next_action(), Some(t + S(59)));
        assert_eq!(leases.due(t + S(88)).ids, vec![2]);
        assert!(leases.remove(&2).is_some());
        assert!(leases.is_empty());
        assert_eq!(leases.next_action(), None);
        assert!(leases.by_action.is_empty() && leases.by_coalesce.is_empty());
    }

    #[test]
    fn a_ready_settlement_is_visited_on_every_turn_until_it_is_queued() {
        let t = Instant::now();
        let mut leases = Leases::default();
        leases.insert(1, lease(t, 60), t);
        let l = leases.get_mut(&1).expect("held");
        l.extending = true;
        l.state = State::Settling(Settle::new(Op::Change {
            timeout: S(0),
            outcome: super::super::calls::ChangeOutcome::Released,
        }));
        // Indexed at once, not when its young second is over.
        assert_eq!(leases.due(t + Duration::from_millis(500)).ids, vec![1]);
        assert_eq!(leases.due(t + S(2)).ids, vec![1], "still ready");
        let State::Settling(s) = &mut leases.get_mut(&1).expect("held").state else {
            unreachable!()
        };
        s.phase = Phase::Queued;
        assert_eq!(leases.due(t + S(3)).ids, Vec::<u64>::new());
    }

    #[test]
    fn a_lease_settled_young_is_never_indexed_and_a_change_indexes_one_at_once() {
        let t = Instant::now();
        let mut leases = Leases::default();
        for id in 0..100 {
            leases.insert(id, lease(t, 30), t);
        }
        // A delete goes through its phases as a settlement does (decided and queued in one
        // event, then on the wire): none brings a need within the second.
        for phase in [Phase::Queued, Phase::InFlight] {
            for id in 0..99 {
                let mut settle = Settle::new(Op::Delete {
                    dead_lettered: false,
                });
                settle.phase = phase;
                leases.get_mut(&id).expect("held").state = State::Settling(settle);
            }
            leases.reindex();
            assert!(leases.by_action.is_empty() && leases.ready.is_empty());
        }
        for id in 0..99 {
            assert!(leases.remove(&id).is_some());
        }
        assert_eq!(leases.due(t + Duration::from_millis(500)), Due::default());
        assert!(leases.by_action.is_empty() && leases.by_coalesce.is_empty());
        assert_eq!(
            leases.young.len(),
            1,
            "the removed leases' entries were dropped"
        );
        // Its delete failed and is tried again at 300 ms, before its young second is over: it
        // is indexed now.
        let mut settle = Settle::new(Op::Delete {
            dead_lettered: false,
        });
        settle.phase = Phase::Backoff(t + Duration::from_millis(300));
        leases.get_mut(&99).expect("held").state = State::Settling(settle);
        leases.reindex();
        assert_eq!(leases.by_action.len(), 1, "indexed at once");
        assert_eq!(leases.due(t + S(1)).ids, vec![99]);
        assert!(leases.young.is_empty());
        // A lease whose first need is within a second (a 2 s visibility) is indexed at once.
        leases.insert(100, lease(t + S(1), 2), t + S(1));
        leases.reindex();
        assert!(leases.young.is_empty());
        assert_eq!(leases.by_coalesce.len(), 2);
    }

    /// Random leases in random states, changed at random times: at every step the index visits
    /// at least what a walk of all leases acts on, finds the same coalescing, never a later next
    /// action, and visits nothing twice. Some inserts reuse an id or pass an earlier `now`.
    /// `FLEET_TEST_SEED=n` replays a run (every failure names its seed).
    #[test]
    fn the_index_agrees_with_a_walk_of_every_lease() {
        let seed = std::env::var("FLEET_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(rand::random::<u64>);
        let mut rng = StdRng::seed_from_u64(seed);
        let t = Instant::now();
        let mut leases = Leases::default();
        let mut next_id = 0;
        let mut now = t;
        let (mut visited, mut reused) = (0, 0);
        for step in 0..10_000u32 {
            now += Duration::from_millis(rng.random_range(0..700));
            let pick = rng.random_range(0..20);
            match pick {
                0..=5 if leases.slots.len() < 300 => {
                    let vis = [2, 10, 30, 60, 3600][rng.random_range(0..5)];
                    let (id, at) = match pick {
                        0 if next_id > 0 => {
                            reused += 1;
                            (rng.random_range(0..next_id), now)
                        }
                        1 => (
                            next_id,
                            now - Duration::from_millis(rng.random_range(0..2_000)),
                        ),
                        _ => (next_id, now),
                    };
                    leases.insert(id, lease(at, vis), at);
                    next_id = next_id.max(id + 1);
                }
                0..=7 if !leases.is_empty() => {
                    let ids = leases.ids();
                    leases.remove(&ids[rng.random_range(0..ids.len())]);
                }
                _ if !leases.is_empty() => {
                    let ids = leases.ids();
                    let id = ids[rng.random_range(0..ids.len())];
                    change(leases.get_mut(&id).expect("held"), now, &mut rng);
                }
                _ => {}
            }
            if step % 3 == 0 {
                let due = leases.due(now);
                let (must, coalesce) = walk(&leases, now);
                assert_eq!(due.coalesce, coalesce, "seed {seed}, step {step}");
                for id in &must {
                    assert!(
                        due.ids.binary_search(id).is_ok(),
                        "seed {seed}, step {step}: lease {id} missed"
                    );
                }
                assert!(
                    due.ids.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed}, step {step}: visited twice"
                );
                visited += due.ids.len();
                let first = leases.values().filter_map(|(_, l)| l.next_action()).min();
                let looked = leases.next_action();
                assert!(
                    first.is_none_or(|f| looked.is_some_and(|l| l <= f)),
                    "seed {seed}, step {step}: {looked:?} after {first:?}"
                );
            }
        }
        assert!(
            visited > 0 && next_id > 1_000 && reused > 0,
            "seed {seed}: the test exercised the index"
        );
    }

    /// One random change of the kinds the settler makes.
    fn change(l: &mut Lease, now: Instant, rng: &mut StdRng) {
        let pick = rng.random_range(0..9);
        match pick {
            0 => l.extending = true,
            1 if l.extending => l.extended(now, l.visibility),
            2 if l.extending => l.extension_failed(now),
            3 => l.capped = true,
            4 => l.state = State::Lost,
            5..=8 => {
                let op = match pick {
                    5 => Op::Delete {
                        dead_lettered: false,
                    },
                    _ => Op::Change {
                        timeout: S(1),
                        outcome: super::super::calls::ChangeOutcome::Retried,
                    },
                };
                let mut s = Settle::new(op);
                s.phase = match rng.random_range(0..4) {
                    0 => Phase::Ready,
                    1 => Phase::Queued,
                    2 => Phase::InFlight,
                    _ => Phase::Backoff(now + Duration::from_millis(300)),
                };
                s.given_up = rng.random_range(0..4) == 0;
                l.state = State::Settling(s);
            }
            _ => {}
        }
    }
}
