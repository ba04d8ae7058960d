//! Checking a deployment's end state (orders, counters, dead letters, confirmations) against a
//! scenario's model, as the end-to-end tests of `fleet run` on moto do.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use fleet_workers::demo::{Confirmations, check};
use fleet_workers::orders::{DynamoOrderStore, LoadedOrder, OrderStore};
use fleet_workers::scenario::Scenario;

use super::fleet_run::Deployment;

/// Every order as the table holds it, through the orders worker's own key (GSI1).
async fn orders(d: &Deployment, scenario: &Scenario) -> Vec<LoadedOrder> {
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&d.sdk), d.table());
    let mut out = Vec::new();
    for o in &scenario.orders {
        if let Some(loaded) = store.load(&o.order_id).await.unwrap() {
            out.push(loaded);
        }
    }
    out
}

/// Every counter, read from the table directly (a scan summing each counter's shards), not
/// through the analytics worker's reader.
pub async fn counters(d: &Deployment) -> HashMap<String, i64> {
    let client = aws_sdk_dynamodb::Client::new(&d.sdk);
    let mut out = HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(d.analytics_table())
            .filter_expression("begins_with(PK, :c)")
            .expression_attribute_values(":c", AttributeValue::S("COUNTER#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let key = item["PK"]
                .as_s()
                .unwrap()
                .trim_start_matches("COUNTER#")
                .to_owned();
            let value: i64 = item["value"].as_n().unwrap().parse().unwrap();
            *out.entry(key).or_default() += value;
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

/// Checks everything against the model and prints the verdict.
pub async fn check_against_model(d: &Deployment, scenario: &Scenario) {
    let orders = orders(d, scenario).await;
    let counters = counters(d).await;
    let dead = d.drain_queue(&format!("{}-dlq", d.orders())).await;
    let emails = d.drain_queue(&d.email()).await;
    let analytics_dead = d.drain_queue(&format!("{}-dlq", d.analytics())).await;
    let requested = super::fleet_run::envelope_id_list(&emails);
    let verdict = check(
        scenario,
        &orders,
        &counters,
        &dead,
        &Confirmations::Published(requested),
    );
    println!(
        "dead letters by reason: {:?}; confirmations {:?}; lost {}, double-applied {}, wrong {}",
        verdict.dead_letters,
        verdict.confirmations,
        verdict.lost.len(),
        verdict.double_applied.len(),
        verdict.wrong.len()
    );
    assert!(
        verdict.ok(),
        "lost: {:?}\ndouble-applied: {:?}\nwrong: {:?}",
        verdict.lost,
        verdict.double_applied,
        verdict.wrong
    );
    assert_eq!(verdict.confirmations.0, scenario.orders.len());
    assert!(
        analytics_dead.is_empty(),
        "analytics dead letters: {analytics_dead:?}"
    );
}
