//! `fleet orders show` and `fleet orders list` against moto: orders written by the orders
//! worker's store, read back through GSI1 and the customer's partition.

#![allow(clippy::unwrap_used)]

mod common;

use common::orders::{cancelled, env, next, paid, placed, refunded, shipped};
use fleet_bus::scenarios::unique_name;
use fleet_workers::orders::{DynamoOrderStore, OrderEvent, OrderRecord, OrderStore};

/// Applies `events` to one order through the store; the outbox rows of the last one stay
/// pending, those of the others are cleared.
async fn write(store: &DynamoOrderStore, events: Vec<(&str, OrderEvent)>) -> OrderRecord {
    let mut record: Option<OrderRecord> = None;
    let last = events.len() - 1;
    for (i, (id, event)) in events.into_iter().enumerate() {
        let (r, rows) = next(record.as_ref(), &env(id, i as i64, event));
        store.apply(&r, &rows).await.unwrap();
        if i < last {
            store.clear_outbox(&r.order, &rows).await.unwrap();
        }
        record = Some(r);
    }
    record.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_shown_by_id_and_listed_by_customer() {
    let config = fleet_tests::moto::sdk_config().await;
    let table = unique_name("orders-cli");
    let client = fleet_tests::dynamo::single_table(&config, &table).await;
    let store = DynamoOrderStore::new(client, &table);
    write(
        &store,
        vec![
            ("e1", placed("o-1", "c-1", 4493, true)),
            ("e2", paid("o-1", 4493)),
            ("e3", shipped("o-1")),
            ("e4", refunded("o-1", 1000)),
        ],
    )
    .await;
    write(
        &store,
        vec![
            ("f1", placed("o-2", "c-1", 500, false)),
            ("f2", cancelled("o-2")),
        ],
    )
    .await;
    write(&store, vec![("g1", placed("o-3", "c-2", 100, false))]).await;

    let show = common::fleet(&["orders", "show", "o-1", "--table", &table]);
    assert!(show.ok, "{}", show.stderr);
    for line in [
        "order      o-1\n",
        "customer   c-1\n",
        "email      c-1@example.com\n",
        "status     shipped\n",
        "total      44.93 EUR\n",
        "paid       44.93 EUR (payment pay-o-1)\n",
        "refunded   10.00 EUR\n",
        "shipment   dhl T-o-1\n",
        "cancelled  -\n",
        "placed at  2026-11-26T15:00:00Z\n",
        "updated at 2026-11-26T15:03:00Z\n",
        "version    4\n",
        "events     e1, e2, e3, e4\n",
        "outbox     1 pending: e4:analytics\n",
        "items\n  sku  quantity  unit price\n  TEE  1         44.93 EUR\n",
    ] {
        assert!(show.stdout.contains(line), "{line:?} in\n{}", show.stdout);
    }

    let list = common::fleet(&["orders", "list", "--customer", "c-1", "--table", &table]);
    assert!(list.ok, "{}", list.stderr);
    assert_eq!(
        list.stdout,
        "order  status     total      paid       refunded   updated\n\
         o-1    shipped    44.93 EUR  44.93 EUR  10.00 EUR  2026-11-26T15:03:00Z\n\
         o-2    cancelled  5.00 EUR   0.00 EUR   0.00 EUR   2026-11-26T15:01:00Z\n\
         2 order(s) of customer c-1\n"
    );
    let none = common::fleet(&["orders", "list", "--customer", "c-9", "--table", &table]);
    assert!(none.ok, "{}", none.stderr);
    assert!(
        none.stdout.ends_with("0 order(s) of customer c-9\n"),
        "{}",
        none.stdout
    );

    let missing = common::fleet(&["orders", "show", "o-404", "--table", &table]);
    assert_eq!(missing.code, Some(1), "{}", missing.stdout);
    assert!(
        missing
            .stderr
            .contains(&format!("no order o-404 in table {table}")),
        "{}",
        missing.stderr
    );
}
