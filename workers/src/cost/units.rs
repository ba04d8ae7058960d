//! DynamoDB request units, estimated from each request before it is sent: what on-demand tables
//! bill. DynamoDB returns `ConsumedCapacity` only when asked, and moto never for transactions, so
//! the units are computed from the request by DynamoDB's published rules:
//!
//! - a write: one unit per started KB of the item (`PutItem`, each put of `BatchWriteItem`);
//!   one unit when the item's size is not in the request (`UpdateItem`, `DeleteItem`, deletes);
//! - a transactional write: twice that, for every item of `TransactWriteItems` (condition checks
//!   included);
//! - a read: one unit per item read, per started 4 KB (`GetItem`, each key of `BatchGetItem`;
//!   `Query` and `Scan` count one unit per call, a floor); a transactional read two.
//!
//! Estimates, on the side of caution: an eventually consistent read is billed half a unit and is
//! counted as one (reads are a fifth of the price of writes); an item's size counts attribute
//! names and values as DynamoDB does, without its small per-type overheads.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::scan::ScanInput;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, Input,
};

/// Estimated DynamoDB write request units, by `operation` (`dynamodb:PutItem`).
pub const WRITE_UNITS: &str = "fleet_dynamodb_write_units_total";
/// Estimated DynamoDB read request units, by `operation`.
pub const READ_UNITS: &str = "fleet_dynamodb_read_units_total";

/// A write request unit covers 1 KB of item.
const WRITE_UNIT_BYTES: usize = 1024;

/// Units one request consumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// Write request units.
    pub write: u64,
    /// Read request units.
    pub read: u64,
}

/// The operation and units of one DynamoDB request, from its (type-erased) input; `None` for
/// operations that consume no request units (`DescribeTable`, ...).
pub fn units_of(input: &Input) -> Option<(&'static str, Units)> {
    let write = |write| Units { write, read: 0 };
    let read = |read| Units { write: 0, read };
    if let Some(i) = input.downcast_ref::<PutItemInput>() {
        return Some(("PutItem", write(write_units(i.item.as_ref()))));
    }
    if input.downcast_ref::<UpdateItemInput>().is_some() {
        return Some(("UpdateItem", write(1)));
    }
    if input.downcast_ref::<DeleteItemInput>().is_some() {
        return Some(("DeleteItem", write(1)));
    }
    if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        let units = i
            .request_items
            .iter()
            .flat_map(HashMap::values)
            .flatten()
            .map(|r| {
                r.put_request
                    .as_ref()
                    .map_or(1, |p| write_units(Some(&p.item)))
            })
            .sum();
        return Some(("BatchWriteItem", write(units)));
    }
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        let units = i
            .transact_items
            .iter()
            .flatten()
            .map(|t| 2 * t.put.as_ref().map_or(1, |p| write_units(Some(&p.item))))
            .sum();
        return Some(("TransactWriteItems", write(units)));
    }
    if input.downcast_ref::<GetItemInput>().is_some() {
        return Some(("GetItem", read(1)));
    }
    if input.downcast_ref::<QueryInput>().is_some() {
        return Some(("Query", read(1)));
    }
    if input.downcast_ref::<ScanInput>().is_some() {
        return Some(("Scan", read(1)));
    }
    if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        let keys = i
            .request_items
            .iter()
            .flat_map(HashMap::values)
            .map(|k| k.keys.len() as u64)
            .sum();
        return Some(("BatchGetItem", read(keys)));
    }
    if let Some(i) = input.downcast_ref::<TransactGetItemsInput>() {
        let items = i.transact_items.as_ref().map_or(1, |t| t.len() as u64);
        return Some(("TransactGetItems", read(2 * items)));
    }
    None
}

fn write_units(item: Option<&HashMap<String, AttributeValue>>) -> u64 {
    let bytes = item.map_or(0, item_bytes);
    units(bytes, WRITE_UNIT_BYTES)
}

/// Started units of `per` bytes, at least one.
fn units(bytes: usize, per: usize) -> u64 {
    (bytes.div_ceil(per)).max(1) as u64
}

/// An item's size as DynamoDB counts it: attribute names plus values.
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// The SDK interceptor that counts the estimated units of every DynamoDB request as it starts.
#[derive(Clone, Debug, Default)]
pub struct UnitsInterceptor;

impl Intercept for UnitsInterceptor {
    fn name(&self) -> &'static str {
        "fleet-dynamodb-units"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some((operation, units)) = units_of(context.input()) else {
            return Ok(());
        };
        // Metadata (the operation's name) is not in the bag yet before execution: the input's
        // type names the operation.
        let operation = format!("dynamodb:{operation}");
        if units.write > 0 {
            metrics::counter!(WRITE_UNITS, "operation" => operation.clone()).increment(units.write);
        }
        if units.read > 0 {
            metrics::counter!(READ_UNITS, "operation" => operation).increment(units.read);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

    fn item(bytes: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), AttributeValue::S("x".repeat(bytes - 2)))])
    }

    #[test]
    fn a_put_costs_one_unit_per_started_kb() {
        for (bytes, expected) in [(10, 1), (1024, 1), (1025, 2), (3000, 3)] {
            let input = PutItemInput::builder()
                .table_name("t")
                .set_item(Some(item(bytes)))
                .build()
                .unwrap();
            assert_eq!(
                units_of(&Input::erase(input)),
                Some((
                    "PutItem",
                    Units {
                        write: expected,
                        read: 0
                    }
                )),
                "{bytes}"
            );
        }
    }

    #[test]
    fn a_transaction_costs_two_units_per_item() {
        let put = Put::builder()
            .table_name("t")
            .set_item(Some(item(1500)))
            .build()
            .unwrap();
        let update = Update::builder()
            .table_name("t")
            .set_key(Some(item(10)))
            .update_expression("SET a = :a")
            .build()
            .unwrap();
        let input = TransactWriteItemsInput::builder()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .build()
            .unwrap();
        // 2 × 2 (a 1.5 KB put) + 2 × 1 (an update).
        assert_eq!(
            units_of(&Input::erase(input)).map(|(_, u)| u.write),
            Some(6)
        );
    }

    #[test]
    fn reads_and_unknown_operations() {
        let get = GetItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(
            units_of(&Input::erase(get)),
            Some(("GetItem", Units { write: 0, read: 1 }))
        );
        let update = UpdateItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(
            units_of(&Input::erase(update)).unwrap().1,
            Units { write: 1, read: 0 }
        );
        assert_eq!(units_of(&Input::erase(())), None);
    }
}
