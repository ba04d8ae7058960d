//! The counter stores' conformance suite: every case takes a fresh `CounterStore` and passes on
//! the in-memory store and the DynamoDB store (against moto). Duplicates inside one batch and
//! across batches, a whole batch redelivered, a batch of more than 100 actions, concurrent batches
//! on the same counters, and the totals exactly. `analytics_store.rs` stamps out a test per case;
//! the stress reruns run [`cases`].
// Each test binary uses its part: the tests the names, the stress reruns the list.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_bus::scenarios::Case;
use fleet_workers::analytics::{CounterStore, EventOutcome, MemoryCounterStore};

use crate::analytics_support::{Dynamo, apply_until_settled, event};

use EventOutcome::{Applied, Duplicate};

/// Calls `$then!` with every case, the features it takes marked: the one list the tests and the
/// stress reruns read, so a new case is in both.
macro_rules! counter_store_cases {
    ($then:ident) => {
        $then! {
            duplicates_inside_one_batch,
            duplicates_across_batches,
            a_whole_batch_redelivered,
            a_batch_of_more_than_a_hundred_actions,
            concurrent_batches_on_the_same_counters(features),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use counter_store_cases;

/// A store under test and where its backend differs.
pub type Subject = (Arc<dyn CounterStore>, Features);

macro_rules! case_list {
    ($($case:ident $(($features:ident))?),+ $(,)?) => {
        /// Every case, by name.
        pub fn cases() -> Vec<Case<Subject>> {
            vec![$(Case {
                name: stringify!($case),
                run: |(store, _features)| Box::pin($case(store $(, $features(_features))?)),
            }),+]
        }
    };
}
counter_store_cases!(case_list);

/// Passes the features through (names the argument in the case list).
pub fn features(f: Features) -> Features {
    f
}

/// A fresh in-memory store.
pub async fn memory() -> Subject {
    (Arc::new(MemoryCounterStore::new()), MEMORY)
}

/// A DynamoDB store on a fresh single table in moto.
pub async fn dynamo() -> Subject {
    (Dynamo::new().await.shared(), MOTO)
}

pub async fn totals(store: &dyn CounterStore, keys: &[&str]) -> Vec<i64> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    store.read(&keys).await.unwrap()
}

pub async fn duplicates_inside_one_batch(store: Arc<dyn CounterStore>) {
    let batch = [
        event("a", &[("x", 1), ("y", 5)]),
        event("b", &[("x", 1)]),
        event("a", &[("x", 1), ("y", 5)]),
        event("c", &[("y", -2)]),
        event("b", &[("x", 1)]),
    ];
    let outcomes = store.apply(&batch).await;
    assert_eq!(outcomes, [Applied, Applied, Duplicate, Applied, Duplicate]);
    assert_eq!(totals(&*store, &["x", "y", "never"]).await, [2, 3, 0]);
}

pub async fn duplicates_across_batches(store: Arc<dyn CounterStore>) {
    let first = [event("a", &[("x", 1)]), event("b", &[("x", 1), ("y", 1)])];
    assert_eq!(store.apply(&first).await, [Applied, Applied]);
    // The duplicate comes first, so the resubmitted rest lands on another shard.
    let second = [
        event("b", &[("x", 1), ("y", 1)]),
        event("c", &[("x", 1)]),
        event("d", &[("y", 1)]),
    ];
    assert_eq!(store.apply(&second).await, [Duplicate, Applied, Applied]);
    assert_eq!(totals(&*store, &["x", "y"]).await, [3, 2]);
}

pub async fn a_whole_batch_redelivered(store: Arc<dyn CounterStore>) {
    let batch: Vec<_> = (0..10)
        .map(|i| event(&format!("e{i}"), &[("x", 1), (&format!("own{i}"), 1)]))
        .collect();
    assert_eq!(store.apply(&batch).await, vec![Applied; 10]);
    assert_eq!(store.apply(&batch).await, vec![Duplicate; 10]);
    assert_eq!(store.apply(&batch).await, vec![Duplicate; 10]);
    assert_eq!(totals(&*store, &["x", "own0", "own9"]).await, [10, 1, 1]);
}

pub async fn a_batch_of_more_than_a_hundred_actions(store: Arc<dyn CounterStore>) {
    // 30 events, each with 4 counters of its own and one shared: 30 + 121 actions.
    let own: Vec<Vec<String>> = (0..30)
        .map(|i| (0..4).map(|k| format!("e{i}k{k}")).collect())
        .collect();
    let mut batch: Vec<_> = (0..30)
        .map(|i| {
            let mut keys: Vec<(&str, i64)> = own[i].iter().map(|k| (k.as_str(), 1)).collect();
            keys.push(("shared", 1));
            event(&format!("e{i}"), &keys)
        })
        .collect();
    // One event already counted, in the second group.
    assert_eq!(store.apply(&batch[25..26]).await, [Applied]);
    batch.push(event("e3", &[("shared", 1)]));
    let outcomes = store.apply(&batch).await;
    let mut expected = vec![Applied; 31];
    expected[25] = Duplicate;
    expected[30] = Duplicate;
    assert_eq!(outcomes, expected);
    assert_eq!(
        totals(&*store, &["shared", "e0k0", "e29k3", "e25k2"]).await,
        [30, 1, 1, 1]
    );
}

/// Where a store's backend differs from DynamoDB on AWS, so a case adapts instead of being
/// dropped (after the scenario suite's `Features`).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// Concurrent transactions are isolated. moto 5.2.5 does not isolate them: a cancelled
    /// `TransactWriteItems` restores a copy of the whole table taken when it started, without a
    /// lock, which undoes (or brings back) what concurrent requests wrote in between.
    pub isolated_transactions: bool,
}

pub const MEMORY: Features = Features {
    isolated_transactions: true,
};
pub const MOTO: Features = Features {
    isolated_transactions: false,
};

pub async fn concurrent_batches_on_the_same_counters(
    store: Arc<dyn CounterStore>,
    features: Features,
) {
    // Tasks applying batches of 10 at once, every event on two shared counters. With isolated
    // transactions, 10 tasks of 5 batches share 100 ids, each in 5 tasks' batches, so
    // concurrent batches race for the same ids as well as the same counters. Without, 6 tasks
    // of 3 batches have ids of their own while they run concurrently, and every batch is
    // redelivered afterwards, one at a time.
    let racing = features.isolated_transactions;
    let (tasks, batches) = if racing { (10, 5) } else { (6, 3) };
    let batch_of = move |t: usize, b: usize| -> Vec<_> {
        (0..10)
            .map(|i| {
                let id = if racing {
                    (t * 10 + b * 20 + i) % 100
                } else {
                    (t * batches + b) * 10 + i
                };
                let own = format!("own{id}");
                event(&format!("e{id}"), &[("hot", 1), ("hot2", 2), (&own, 1)])
            })
            .collect()
    };
    let running: Vec<_> = (0..tasks)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut settled = Vec::new();
                for b in 0..batches {
                    settled.extend(apply_until_settled(&*store, batch_of(t, b)).await);
                }
                settled
            })
        })
        .collect();
    let mut settled = Vec::new();
    for task in running {
        settled.extend(task.await.unwrap());
    }
    if !racing {
        for (t, b) in (0..tasks).flat_map(|t| (0..batches).map(move |b| (t, b))) {
            settled.extend(apply_until_settled(&*store, batch_of(t, b)).await);
        }
    }
    let mut outcomes: BTreeMap<String, Vec<EventOutcome>> = BTreeMap::new();
    for (id, outcome) in settled {
        outcomes.entry(id).or_default().push(outcome);
    }
    let ids = if racing { 100 } else { tasks * batches * 10 };
    let deliveries = if racing { 5 } else { 2 };
    assert_eq!(outcomes.len(), ids, "every id settled");
    for (id, seen) in &outcomes {
        let applied = seen.iter().filter(|o| **o == Applied).count();
        assert_eq!(
            (applied, seen.len()),
            (1, deliveries),
            "{id}: applied once: {seen:?}"
        );
    }
    let n = i64::try_from(ids).unwrap();
    assert_eq!(
        totals(&*store, &["hot", "hot2", "own0", "own99"]).await,
        [n, 2 * n, 1, 1]
    );
}
