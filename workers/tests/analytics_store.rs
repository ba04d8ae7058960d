//! The counter stores' conformance suite: the in-memory store and the DynamoDB store (against
//! moto) pass the same cases. Duplicates inside one batch and across batches, a whole batch
//! redelivered, a batch of more than 100 actions, concurrent batches on the same counters, and
//! the totals exactly. DynamoDB-only checks (the items, the calls, the shards) follow.

#![allow(clippy::unwrap_used)]

mod analytics_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use analytics_support::{Dynamo, apply_until_settled, event};
use fleet_workers::analytics::{CounterStore, EventOutcome, MemoryCounterStore};

use EventOutcome::{Applied, Duplicate};

async fn totals(store: &dyn CounterStore, keys: &[&str]) -> Vec<i64> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    store.read(&keys).await.unwrap()
}

async fn duplicates_inside_one_batch(store: Arc<dyn CounterStore>) {
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

async fn duplicates_across_batches(store: Arc<dyn CounterStore>) {
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

async fn a_whole_batch_redelivered(store: Arc<dyn CounterStore>) {
    let batch: Vec<_> = (0..10)
        .map(|i| event(&format!("e{i}"), &[("x", 1), (&format!("own{i}"), 1)]))
        .collect();
    assert_eq!(store.apply(&batch).await, vec![Applied; 10]);
    assert_eq!(store.apply(&batch).await, vec![Duplicate; 10]);
    assert_eq!(store.apply(&batch).await, vec![Duplicate; 10]);
    assert_eq!(totals(&*store, &["x", "own0", "own9"]).await, [10, 1, 1]);
}

async fn a_batch_of_more_than_a_hundred_actions(store: Arc<dyn CounterStore>) {
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
struct Features {
    /// Concurrent transactions are isolated. moto 5.2.5 does not isolate them: a cancelled
    /// `TransactWriteItems` restores a copy of the whole table taken when it started, without a
    /// lock, which undoes (or brings back) what concurrent requests wrote in between.
    isolated_transactions: bool,
}

const MEMORY: Features = Features {
    isolated_transactions: true,
};
const MOTO: Features = Features {
    isolated_transactions: false,
};

async fn concurrent_batches_on_the_same_counters(store: Arc<dyn CounterStore>, features: Features) {
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

macro_rules! conformance {
    ($($case:ident $(($features:ident))?),+ $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $case() {
                let store = std::sync::Arc::new(super::MemoryCounterStore::new());
                super::$case(store $(, super::$features(super::MEMORY))?).await;
            })+
        }
        mod dynamo {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = super::Dynamo::new().await.shared();
                super::$case(store $(, super::$features(super::MOTO))?).await;
            })+
        }
    };
}

/// Passes the features through (names the argument in the macro call).
fn features(f: Features) -> Features {
    f
}

conformance!(
    duplicates_inside_one_batch,
    duplicates_across_batches,
    a_whole_batch_redelivered,
    a_batch_of_more_than_a_hundred_actions,
    concurrent_batches_on_the_same_counters(features),
);

// DynamoDB only: the items, the calls, the shards, and failures around the commit.

mod dynamo_only {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use aws_sdk_dynamodb::types::AttributeValue;
    use fleet_workers::analytics::{CounterStore, DynamoCounterConfig, EventOutcome};
    use fleet_workers::table::keys::shard_of;

    use super::analytics_support::{Dynamo, Fault, FaultKind, event};
    use super::totals;

    fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
        match item.get(name) {
            Some(AttributeValue::S(v)) => v.clone(),
            Some(AttributeValue::N(v)) => v.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn items_follow_the_single_table_design() {
        let d = Dynamo::with(DynamoCounterConfig {
            dedup_ttl: Duration::from_secs(3600),
            ..DynamoCounterConfig::default()
        })
        .await;
        let outcomes = d
            .store
            .apply(&[
                event("e-1", &[("x", 2), ("y", -1)]),
                event("e-2", &[("x", 1)]),
            ])
            .await;
        assert_eq!(outcomes, [EventOutcome::Applied, EventOutcome::Applied]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let dedup = d.items("EVENT#").await;
        assert_eq!(dedup.len(), 2);
        for item in &dedup {
            assert_eq!(s(item, "SK"), "ANALYTICS");
            let expiration: u64 = s(item, "expiration").parse().unwrap();
            assert!(
                expiration.abs_diff(now + 3600) <= 60,
                "{expiration} vs {now}"
            );
        }
        let counters = d.items("COUNTER#").await;
        let shard = format!("SHARD#{}", shard_of("e-1", 4));
        let mut seen: Vec<(String, String, String)> = counters
            .iter()
            .map(|i| (s(i, "PK"), s(i, "SK"), s(i, "value")))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("COUNTER#x".into(), shard.clone(), "3".into()),
                ("COUNTER#y".into(), shard, "-1".into())
            ]
        );
        assert_eq!((d.transactions(), d.store.write_stats().items), (1, 4));
    }

    #[tokio::test]
    async fn a_duplicate_costs_one_cancelled_call_and_the_rest_is_resubmitted() {
        let d = Dynamo::new().await;
        d.store.apply(&[event("a", &[("x", 1)])]).await;
        let outcomes = d
            .store
            .apply(&[
                event("b", &[("x", 1)]),
                event("a", &[("x", 1)]),
                event("c", &[("x", 1)]),
            ])
            .await;
        use EventOutcome::{Applied, Duplicate};
        assert_eq!(outcomes, [Applied, Duplicate, Applied]);
        let stats = d.store.write_stats();
        assert_eq!(
            (
                stats.calls,
                stats.committed,
                stats.cancelled,
                d.transactions()
            ),
            (3, 2, 1, 3)
        );
        assert_eq!(totals(&d.store, &["x"]).await, [3]);
        // A batch of duplicates only: one cancelled call, nothing left to resubmit.
        let again = d
            .store
            .apply(&[event("a", &[("x", 1)]), event("c", &[("x", 1)])])
            .await;
        assert_eq!(again, [Duplicate, Duplicate]);
        assert_eq!(d.transactions(), 4);
    }

    #[tokio::test]
    async fn batches_spread_a_hot_counter_over_the_shards_and_readers_sum_them() {
        let d = Dynamo::new().await;
        for i in 0..40 {
            d.store
                .apply(&[event(&format!("e{i}"), &[("hot", 1)])])
                .await;
        }
        let shards = d.items("COUNTER#hot").await;
        assert_eq!(shards.len(), 4, "every one of the 4 shards written");
        let sum: i64 = shards
            .iter()
            .map(|i| s(i, "value").parse::<i64>().unwrap())
            .sum();
        assert_eq!(sum, 40);
        assert_eq!(totals(&d.store, &["hot"]).await, [40]);
    }

    #[tokio::test]
    async fn the_sdks_retry_of_a_committed_call_is_not_applied_twice() {
        let fault = Fault::new(FaultKind::LostResponseRetried, 1);
        let d = Dynamo::with_fault(fault.clone()).await;
        let outcomes = d
            .store
            .apply(&[event("a", &[("x", 1)]), event("b", &[("x", 1)])])
            .await;
        assert_eq!(fault.left(), 0, "the fault was injected");
        // moto ignores the ClientRequestToken, so the retry meets the deduplication items; on
        // AWS the token makes the retry return the first call's success.
        assert_eq!(outcomes, [EventOutcome::Duplicate, EventOutcome::Duplicate]);
        let calls = d.calls.get("DynamoDB", "TransactWriteItems");
        assert_eq!(
            (calls.calls, calls.requests),
            (1, 2),
            "one call, retried once by the SDK"
        );
        assert_eq!(totals(&d.store, &["x"]).await, [2]);
    }

    #[tokio::test]
    async fn a_call_that_fails_after_the_commit_is_caught_by_the_deduplication_items() {
        let fault = Fault::new(FaultKind::LostResponseRefused, 1);
        let d = Dynamo::with_fault(fault).await;
        let batch = [event("a", &[("x", 1)]), event("b", &[("x", 1)])];
        let first = d.store.apply(&batch).await;
        assert!(
            first
                .iter()
                .all(|o| matches!(o, EventOutcome::Failed(f) if f.label == "dynamodb_refused")),
            "{first:?}"
        );
        // The queue redelivers them: counted once.
        assert_eq!(
            d.store.apply(&batch).await,
            [EventOutcome::Duplicate, EventOutcome::Duplicate]
        );
        assert_eq!(totals(&d.store, &["x"]).await, [2]);
    }

    #[tokio::test]
    async fn a_call_that_fails_before_sending_writes_nothing_and_the_redelivery_counts() {
        let fault = Fault::new(FaultKind::BeforeSending, 1);
        let d = Dynamo::with_fault(fault).await;
        let batch = [event("a", &[("x", 1)]), event("b", &[("x", 1)])];
        let first = d.store.apply(&batch).await;
        assert!(
            first.iter().all(|o| matches!(o, EventOutcome::Failed(_))),
            "{first:?}"
        );
        assert_eq!(totals(&d.store, &["x"]).await, [0]);
        assert_eq!(
            d.store.apply(&batch).await,
            [EventOutcome::Applied, EventOutcome::Applied]
        );
        assert_eq!(totals(&d.store, &["x"]).await, [2]);
    }

    #[tokio::test]
    async fn a_missing_table_fails_every_event_with_its_label() {
        let d = Dynamo::new().await;
        let store = fleet_workers::analytics::DynamoCounterStore::new(
            d.client.clone(),
            DynamoCounterConfig {
                table: "no-such-table".into(),
                ..DynamoCounterConfig::default()
            },
        );
        let outcomes = store.apply(&[event("a", &[("x", 1)])]).await;
        assert!(
            matches!(&outcomes[..], [EventOutcome::Failed(f)] if f.label == "table_not_found"),
            "{outcomes:?}"
        );
        assert!(store.read(&["x".into()]).await.is_err());
    }
}
