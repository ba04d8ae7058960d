//! DynamoDB requests as IAM actions: each transaction item its own action, a `Query` on its
//! index, and the partition-key pattern of every item touched.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;

use super::{Found, item_key};
use crate::deploy::iam::{Resource, leading_key_pattern};

fn table(name: &Option<String>) -> Resource {
    Resource::Table(name.clone().unwrap_or_default())
}

/// The IAM actions of one DynamoDB request.
pub(super) fn actions(input: &Input) -> Found {
    if let Some(i) = input.downcast_ref::<op::put_item::PutItemInput>() {
        return vec![(
            "dynamodb:PutItem",
            table(&i.table_name),
            item_key(i.item.as_ref()),
        )];
    }
    if let Some(i) = input.downcast_ref::<op::update_item::UpdateItemInput>() {
        return vec![(
            "dynamodb:UpdateItem",
            table(&i.table_name),
            item_key(i.key.as_ref()),
        )];
    }
    if let Some(i) = input.downcast_ref::<op::delete_item::DeleteItemInput>() {
        return vec![(
            "dynamodb:DeleteItem",
            table(&i.table_name),
            item_key(i.key.as_ref()),
        )];
    }
    if let Some(i) = input.downcast_ref::<op::get_item::GetItemInput>() {
        return vec![(
            "dynamodb:GetItem",
            table(&i.table_name),
            item_key(i.key.as_ref()),
        )];
    }
    if let Some(i) = input.downcast_ref::<op::query::QueryInput>() {
        return vec![query(i)];
    }
    if let Some(i) = input.downcast_ref::<op::transact_write_items::TransactWriteItemsInput>() {
        return transact_write(i);
    }
    if let Some(i) = input.downcast_ref::<op::transact_get_items::TransactGetItemsInput>() {
        return i
            .transact_items
            .iter()
            .flatten()
            .filter_map(|t| t.get.as_ref())
            .map(|g| {
                let t = Resource::Table(g.table_name.clone());
                ("dynamodb:GetItem", t, item_key(Some(&g.key)))
            })
            .collect();
    }
    if let Some(i) = input.downcast_ref::<op::batch_write_item::BatchWriteItemInput>() {
        return batch_write(i);
    }
    if let Some(i) = input.downcast_ref::<op::describe_table::DescribeTableInput>() {
        return vec![("dynamodb:DescribeTable", table(&i.table_name), Vec::new())];
    }
    Vec::new()
}

/// A `Query`: on the index when it names one, its key pattern from the key condition's
/// partition-key equality (the first `name = :value` clause; Fleet's queries write it first).
fn query(i: &op::query::QueryInput) -> (&'static str, Resource, Vec<String>) {
    let name = i.table_name.clone().unwrap_or_default();
    let resource = match &i.index_name {
        Some(index) => Resource::Index {
            table: name,
            index: index.clone(),
        },
        None => Resource::Table(name),
    };
    let keys = i
        .key_condition_expression
        .as_deref()
        .and_then(|e| partition_value(e, i.expression_attribute_values.as_ref()))
        .map(|v| vec![leading_key_pattern(&v)])
        .unwrap_or_default();
    ("dynamodb:Query", resource, keys)
}

fn partition_value(
    expression: &str,
    values: Option<&HashMap<String, AttributeValue>>,
) -> Option<String> {
    expression.split(" AND ").find_map(|clause| {
        let (left, right) = clause.split_once('=')?;
        let (left, right) = (left.trim(), right.trim());
        if left.contains('(') || left.ends_with(['<', '>']) || !right.starts_with(':') {
            return None;
        }
        values?.get(right)?.as_s().ok().cloned()
    })
}

fn transact_write(
    i: &op::transact_write_items::TransactWriteItemsInput,
) -> Vec<(&'static str, Resource, Vec<String>)> {
    let mut out = Vec::new();
    for item in i.transact_items.iter().flatten() {
        if let Some(p) = &item.put {
            let t = Resource::Table(p.table_name.clone());
            out.push(("dynamodb:PutItem", t, item_key(Some(&p.item))));
        }
        if let Some(u) = &item.update {
            let t = Resource::Table(u.table_name.clone());
            out.push(("dynamodb:UpdateItem", t, item_key(Some(&u.key))));
        }
        if let Some(d) = &item.delete {
            let t = Resource::Table(d.table_name.clone());
            out.push(("dynamodb:DeleteItem", t, item_key(Some(&d.key))));
        }
        if let Some(c) = &item.condition_check {
            let t = Resource::Table(c.table_name.clone());
            out.push(("dynamodb:ConditionCheckItem", t, item_key(Some(&c.key))));
        }
    }
    out
}

fn batch_write(
    i: &op::batch_write_item::BatchWriteItemInput,
) -> Vec<(&'static str, Resource, Vec<String>)> {
    let mut out = Vec::new();
    for (name, requests) in i.request_items.iter().flatten() {
        let keys = requests
            .iter()
            .flat_map(|r| {
                let put = r.put_request.as_ref().map(|p| &p.item);
                let delete = r.delete_request.as_ref().map(|d| &d.key);
                item_key(put.or(delete))
            })
            .collect();
        out.push((
            "dynamodb:BatchWriteItem",
            Resource::Table(name.clone()),
            keys,
        ));
    }
    out
}
