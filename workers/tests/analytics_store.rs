//! The counter stores' conformance suite (`analytics_conformance/`): the in-memory store and the
//! DynamoDB store (against moto) pass the same cases. DynamoDB-only checks (the items, the calls,
//! the shards) follow.

#![allow(clippy::unwrap_used)]

mod analytics_conformance;
mod analytics_support;

use analytics_conformance::totals;

macro_rules! conformance {
    ($($case:ident $(($features:ident))?),+ $(,)?) => {
        mod memory {
            use crate::analytics_conformance as suite;
            $(#[tokio::test]
            async fn $case() {
                let (store, _features) = suite::memory().await;
                suite::$case(store $(, suite::$features(_features))?).await;
            })+
        }
        mod dynamo {
            use crate::analytics_conformance as suite;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _features) = suite::dynamo().await;
                suite::$case(store $(, suite::$features(_features))?).await;
            })+
        }
    };
}

analytics_conformance::counter_store_cases!(conformance);

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
