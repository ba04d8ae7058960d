//! [`DynamoOrderStore`]: orders on the single table.
//!
//! - `load` finds the order through `GSI1` (`GSI1PK = ORDER#<order>`), then reads its outbox rows
//!   under the customer with a strongly consistent Query. `GSI1` is eventually consistent on
//!   AWS: an order placed a moment ago may not be visible yet (the event is retried as
//!   `order_not_found`, and the backoff covers the lag), and a visible one may be a version
//!   behind (the conditional write then fails, and the handler loads again).
//! - `apply` is one `TransactWriteItems`: a Put of the order conditional on its version
//!   (`attribute_not_exists(PK)` for a new order), and a Put per outbox row.
//! - `clear_outbox` is one `BatchWriteItem` of deletes per 25 rows.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};

use super::item::{self, Item};
use super::order::Order;
use super::store::{LoadedOrder, OrderRecord, OrderStore, OutboxRow, StoreError};
use crate::table::{GSI1, GSI1PK, GSI1SK, PK, SK, keys};

/// Most requests in one `BatchWriteItem` (a DynamoDB limit).
const MAX_BATCH_WRITE: usize = 25;
/// Rounds of resubmitting unprocessed deletes before giving up.
const UNPROCESSED_ROUNDS: u32 = 4;

/// Orders, their versions and outboxes on the single table.
#[derive(Clone, Debug)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
}

fn unavailable(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Unavailable {
        operation,
        source: Box::new(e),
    }
}

fn corrupt(order_id: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        order_id: order_id.to_owned(),
        reason: reason.into(),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DynamoOrderStore {
    /// A store on `table` through `client` (build it once and share it).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The order item with this id, through `GSI1`.
    async fn order_item(&self, order_id: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_names("#sk", GSI1SK)
            .expression_attribute_values(":pk", s(keys::order_gsi1pk(order_id)))
            .expression_attribute_values(":sk", s(keys::ORDER_GSI1SK))
            .send()
            .await
            .map_err(|e| unavailable("Query", e))?;
        match out.items() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            more => Err(corrupt(
                order_id,
                format!(
                    "{} order items share the id (placed for more than one customer)",
                    more.len()
                ),
            )),
        }
    }

    /// Every item under `pk` whose sort key begins with `prefix`, page after page.
    async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistent)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// The orders of one customer (a Query on their partition), in order id order.
    ///
    /// # Errors
    /// `Unavailable`, or `Corrupt` for an item that cannot be read.
    pub async fn customer_orders(&self, customer_id: &str) -> Result<Vec<OrderRecord>, StoreError> {
        let items = self
            .query_prefix(
                &keys::customer_pk(customer_id),
                keys::ORDER_SK_PREFIX,
                false,
            )
            .await?;
        items
            .iter()
            .map(|i| {
                item::order_from_item(i)
                    .map_err(|reason| corrupt(&format!("of {customer_id}"), reason))
            })
            .collect()
    }

    /// The pending outbox rows of `order`: a consistent read, so a row committed a moment ago
    /// is seen.
    async fn outbox(&self, order: &Order) -> Result<Vec<OutboxRow>, StoreError> {
        let pk = keys::customer_pk(order.customer_id());
        let items = self
            .query_prefix(&pk, &keys::outbox_sk_prefix(order.order_id()), true)
            .await?;
        items
            .iter()
            // An order id may contain `#`: another order's rows can share the prefix.
            .filter(|i| {
                i.get(item::ORDER_ID)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(order.order_id())
            })
            .map(|i| item::outbox_from_item(i).map_err(|reason| corrupt(order.order_id(), reason)))
            .collect()
    }

    fn order_put(&self, next: &OrderRecord) -> Result<TransactWriteItem, StoreError> {
        let id = next.order.order_id();
        let item = item::order_item(next).map_err(|reason| corrupt(id, reason))?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if next.version <= 1 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("#v = :expected")
                .expression_attribute_names("#v", item::VERSION)
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N((next.version - 1).to_string()),
                )
        };
        let put = put
            .build()
            .map_err(|e| unavailable("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The order id's guard item (`ORDER#<id>` / `ORDER`), put with the placed order: the
    /// order's own key is per customer, so without it two placements of one id for two
    /// customers would both commit, and the id would then find two orders.
    fn id_guard(&self, next: &OrderRecord) -> Result<TransactWriteItem, StoreError> {
        let order = &next.order;
        let item = Item::from([
            (PK.to_owned(), s(keys::order_guard_pk(order.order_id()))),
            (SK.to_owned(), s(keys::ORDER_GUARD_SK.to_owned())),
            (item::TYPE.to_owned(), s("order_id".to_owned())),
            ("customer_id".to_owned(), s(order.customer_id().to_owned())),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| unavailable("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn outbox_put(&self, order: &Order, row: &OutboxRow) -> Result<TransactWriteItem, StoreError> {
        let item =
            item::outbox_item(order, row).map_err(|e| corrupt(order.order_id(), e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| unavailable("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn delete_batch(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let pk = keys::customer_pk(order.customer_id());
        let mut requests = rows
            .iter()
            .map(|row| {
                let key = Item::from([
                    (PK.to_owned(), s(pk.clone())),
                    (
                        SK.to_owned(),
                        s(keys::outbox_sk(order.order_id(), row.id())),
                    ),
                ]);
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| unavailable("BatchWriteItem", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for round in 0..UNPROCESSED_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| unavailable("BatchWriteItem", e))?;
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(unavailable(
            "BatchWriteItem",
            std::io::Error::other(format!(
                "{} outbox deletes stayed unprocessed",
                requests.len()
            )),
        ))
    }
}

/// Whether a failed transaction lost a race for the order: its condition failed, or another
/// transaction was writing the same item.
fn lost_the_race(e: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = e else {
        return false;
    };
    cancelled.cancellation_reasons().iter().any(|r| {
        matches!(
            r.code(),
            Some("ConditionalCheckFailed" | "TransactionConflict")
        )
    })
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn load(&self, order_id: &str) -> Result<Option<LoadedOrder>, StoreError> {
        let Some(item) = self.order_item(order_id).await? else {
            return Ok(None);
        };
        let record = item::order_from_item(&item).map_err(|reason| corrupt(order_id, reason))?;
        let outbox = self.outbox(&record.order).await?;
        Ok(Some(LoadedOrder { record, outbox }))
    }

    async fn apply(&self, next: &OrderRecord, outbox: &[OutboxRow]) -> Result<(), StoreError> {
        let mut actions = vec![self.order_put(next)?];
        if next.version <= 1 {
            actions.push(self.id_guard(next)?);
        }
        for row in outbox {
            actions.push(self.outbox_put(&next.order, row)?);
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(lost_the_race) => {
                Err(StoreError::Conflict {
                    order_id: next.order.order_id().to_owned(),
                    expected: next.version.saturating_sub(1),
                })
            }
            Err(e) => Err(unavailable("TransactWriteItems", e)),
        }
    }

    async fn clear_outbox(&self, order: &Order, rows: &[OutboxRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(MAX_BATCH_WRITE) {
            self.delete_batch(order, chunk).await?;
        }
        Ok(())
    }
}
