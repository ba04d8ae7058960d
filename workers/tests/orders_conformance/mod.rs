//! The order store conformance suite: every case takes a fresh `OrderStore` and passes on
//! `MemoryOrderStore` and on `DynamoOrderStore` (on moto, one fresh single table per case).
//! `orders_store.rs` stamps out a test per case; the stress reruns run [`cases`].
// Each test binary uses its part: the tests the names, the stress reruns the list.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use fleet_bus::scenarios::{Case, unique_name};
use fleet_workers::orders::{
    DynamoOrderStore, LoadedOrder, MemoryOrderStore, OrderRecord, OrderStatus, OrderStore,
    OutboxRow, StoreError,
};

use crate::common::orders::{cancelled, env, next, paid, placed, refunded, shipped};

/// Calls `$then!` with the name of every case: the one list the tests and the stress reruns
/// read, so a new case is in both.
macro_rules! order_store_cases {
    ($then:ident) => {
        $then! {
            an_absent_order_loads_as_none,
            an_order_loads_with_its_outbox_and_applied_ids,
            writes_are_conditional_on_the_version,
            clearing_removes_only_the_given_rows,
            concurrent_writes_of_one_version_have_exactly_one_winner,
            orders_whose_ids_share_a_prefix_keep_their_own_outboxes,
            every_fact_of_an_order_round_trips,
            an_order_id_is_placed_once_whatever_the_customer,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use order_store_cases;

macro_rules! case_list {
    ($($case:ident),+ $(,)?) => {
        /// Every case, by name.
        pub fn cases() -> Vec<Case<Arc<dyn OrderStore>>> {
            vec![$(Case {
                name: stringify!($case),
                run: |store| Box::pin($case(store)),
            }),+]
        }
    };
}
order_store_cases!(case_list);

/// A fresh in-memory store.
pub async fn memory() -> Arc<dyn OrderStore> {
    Arc::new(MemoryOrderStore::new())
}

/// A DynamoDB store on a fresh single table in moto.
pub async fn dynamo() -> Arc<dyn OrderStore> {
    let config = fleet_tests::moto::sdk_config().await;
    let table = unique_name("orders");
    let client = fleet_tests::dynamo::single_table(&config, &table).await;
    Arc::new(DynamoOrderStore::new(client, table))
}

async fn load(store: &Arc<dyn OrderStore>, id: &str) -> LoadedOrder {
    store.load(id).await.unwrap().expect("the order exists")
}

fn ids(rows: &[OutboxRow]) -> Vec<&str> {
    rows.iter().map(OutboxRow::id).collect()
}

pub async fn an_absent_order_loads_as_none(store: Arc<dyn OrderStore>) {
    assert_eq!(store.load("o-missing").await.unwrap(), None);
}

pub async fn an_order_loads_with_its_outbox_and_applied_ids(store: Arc<dyn OrderStore>) {
    let (record, rows) = next(None, &env("e-1", 0, placed("o-1", "c-1", 500, true)));
    store.apply(&record, &rows).await.unwrap();
    let loaded = load(&store, "o-1").await;
    assert_eq!(loaded.record, record);
    assert_eq!(loaded.record.version, 1);
    assert_eq!(loaded.record.applied, ["e-1"]);
    assert_eq!(ids(&loaded.outbox), ["e-1:analytics", "e-1:email"]);
    assert_eq!(loaded.outbox.len(), rows.len());
    for row in &rows {
        assert!(loaded.outbox.contains(row), "{} round-trips", row.id());
    }
}

pub async fn writes_are_conditional_on_the_version(store: Arc<dyn OrderStore>) {
    let (v1, rows1) = next(None, &env("e-1", 0, placed("o-1", "c-1", 500, false)));
    store.apply(&v1, &rows1).await.unwrap();
    let again = store.apply(&v1, &rows1).await.unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict { expected: 0, .. }),
        "{again:?}"
    );

    let (v2, rows2) = next(Some(&v1), &env("e-2", 1, paid("o-1", 500)));
    store.apply(&v2, &rows2).await.unwrap();
    // A writer that decided on version 1 too: refused, and none of its rows are written.
    let (stale, stale_rows) = next(Some(&v1), &env("e-3", 2, cancelled("o-1")));
    let err = store.apply(&stale, &stale_rows).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { order_id, expected: 1 } if order_id == "o-1"),
        "{err:?}"
    );
    let loaded = load(&store, "o-1").await;
    assert_eq!(loaded.record, v2);
    assert_eq!(ids(&loaded.outbox), ["e-1:analytics", "e-2:analytics"]);
}

pub async fn clearing_removes_only_the_given_rows(store: Arc<dyn OrderStore>) {
    let (v1, rows1) = next(None, &env("e-1", 0, placed("o-1", "c-1", 500, true)));
    store.apply(&v1, &rows1).await.unwrap();
    let (v2, rows2) = next(Some(&v1), &env("e-2", 1, paid("o-1", 500)));
    store.apply(&v2, &rows2).await.unwrap();
    store.clear_outbox(&v2.order, &rows1).await.unwrap();
    assert_eq!(ids(&load(&store, "o-1").await.outbox), ["e-2:analytics"]);
    // Rows already gone are fine to clear again.
    store.clear_outbox(&v2.order, &rows1).await.unwrap();
    store.clear_outbox(&v2.order, &rows2).await.unwrap();
    let loaded = load(&store, "o-1").await;
    assert!(loaded.outbox.is_empty());
    assert_eq!(loaded.record, v2, "clearing leaves the order as it was");
}

pub async fn concurrent_writes_of_one_version_have_exactly_one_winner(store: Arc<dyn OrderStore>) {
    const WRITERS: usize = 12;
    let mut current: Option<OrderRecord> = None;
    for round in 0..3 {
        let attempts: Vec<_> = (0..WRITERS)
            .map(|w| {
                let id = format!("r{round}-w{w}");
                let event = match round {
                    0 => placed("o-1", "c-1", 1200, false),
                    1 => paid("o-1", 1200),
                    _ => refunded("o-1", 100),
                };
                next(current.as_ref(), &env(&id, round, event))
            })
            .collect();
        let tasks: Vec<_> = attempts
            .iter()
            .cloned()
            .map(|(record, rows)| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.apply(&record, &rows).await })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(()) => winners.push(i),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (won, won_rows) = &attempts[winners[0]];
        let loaded = load(&store, "o-1").await;
        assert_eq!(&loaded.record, won, "round {round}");
        let expected: BTreeSet<&str> = won_rows.iter().map(OutboxRow::id).collect();
        let pending: BTreeSet<&str> = loaded.outbox.iter().map(OutboxRow::id).collect();
        assert!(pending.is_superset(&expected), "round {round}");
        assert_eq!(
            pending.len(),
            round as usize + 1,
            "only the winners' rows: {pending:?}"
        );
        current = Some(won.clone());
    }
    let last = load(&store, "o-1").await.record;
    assert_eq!(last.version, 3);
    assert_eq!(last.order.status, OrderStatus::Paid);
    assert_eq!(last.order.refunded_cents, 100);
}

pub async fn orders_whose_ids_share_a_prefix_keep_their_own_outboxes(store: Arc<dyn OrderStore>) {
    let (a, a_rows) = next(None, &env("a-1", 0, placed("o", "c-1", 100, false)));
    let (b, b_rows) = next(None, &env("b-1", 0, placed("o#x", "c-1", 100, false)));
    store.apply(&a, &a_rows).await.unwrap();
    store.apply(&b, &b_rows).await.unwrap();
    assert_eq!(ids(&load(&store, "o").await.outbox), ["a-1:analytics"]);
    assert_eq!(ids(&load(&store, "o#x").await.outbox), ["b-1:analytics"]);
    assert_eq!(load(&store, "o").await.record, a);
}

pub async fn every_fact_of_an_order_round_trips(store: Arc<dyn OrderStore>) {
    let events = [
        placed("o-1", "c-1", 900, true),
        paid("o-1", 900),
        shipped("o-1"),
        refunded("o-1", 400),
    ];
    let mut record: Option<OrderRecord> = None;
    for (i, event) in events.into_iter().enumerate() {
        let (r, rows) = next(record.as_ref(), &env(&format!("e-{i}"), i as i64, event));
        store.apply(&r, &rows).await.unwrap();
        record = Some(r);
    }
    assert_eq!(load(&store, "o-1").await.record, record.unwrap());

    let mut note = cancelled("o-2");
    if let fleet_workers::orders::OrderEvent::Cancelled(c) = &mut note {
        c.note = Some("changed my mind, «vraiment»".parse().unwrap());
    }
    let (p, p_rows) = next(None, &env("x-1", 0, placed("o-2", "c-2", 100, false)));
    store.apply(&p, &p_rows).await.unwrap();
    let (c, c_rows) = next(Some(&p), &env("x-2", 1, note));
    store.apply(&c, &c_rows).await.unwrap();
    let loaded = load(&store, "o-2").await.record;
    assert_eq!(loaded, c);
    assert_eq!(loaded.order.status, OrderStatus::Cancelled);
}

/// The order's own key is per customer: placing one id for two customers must still let only
/// one in (the memory store is keyed by id; the DynamoDB store puts an id guard item).
pub async fn an_order_id_is_placed_once_whatever_the_customer(store: Arc<dyn OrderStore>) {
    let (first, _) = next(None, &env("e-1", 0, placed("o-dup", "c-1", 500, false)));
    let (second, _) = next(None, &env("e-2", 0, placed("o-dup", "c-2", 700, false)));
    store.apply(&first, &[]).await.unwrap();
    let refused = store.apply(&second, &[]).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::Conflict { .. }),
        "{refused:?}"
    );
    let loaded = load(&store, "o-dup").await;
    assert_eq!(loaded.record.order.customer_id(), "c-1");
}
