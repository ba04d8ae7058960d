//! Orders and outbox rows as items of the single table, and back.
//!
//! An order item holds the keys, `type = "order"`, `version`, `applied` (the applied event
//! ids) and every field of the order as its own attribute (`status`, `total_cents`, `items` as
//! a list of maps, ...), so the table reads well in the console and in `fleet orders`. An
//! outbox row holds the event's envelope as JSON in `body`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::SecondsFormat;
use serde_json::{Map, Number, Value};

use super::order::Order;
use super::store::{OrderRecord, OutboxRow};
use crate::table::keys;
use crate::table::{GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, SK};

/// An item of the table.
pub type Item = HashMap<String, AttributeValue>;

/// `type` of an order item.
pub const ORDER_TYPE: &str = "order";
/// `type` of an outbox row.
pub const OUTBOX_TYPE: &str = "outbox";
/// The item kind attribute.
pub const TYPE: &str = "type";
/// The version attribute of an order item.
pub const VERSION: &str = "version";
/// The applied event ids of an order item.
pub const APPLIED: &str = "applied";
/// The order id attribute (of orders, through the order's fields, and of outbox rows).
pub const ORDER_ID: &str = "order_id";
/// The outgoing event's id, on an outbox row.
pub const EVENT_ID: &str = "event_id";
/// The outgoing event's type, on an outbox row (for people reading the table).
pub const EVENT_TYPE: &str = "event_type";
/// The outgoing envelope's JSON, on an outbox row.
pub const BODY: &str = "body";

/// Attributes that are not the order's own fields.
const NOT_ORDER_FIELDS: [&str; 9] = [
    PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK, TYPE, VERSION, APPLIED,
];

/// The order item of a record.
///
/// # Errors
/// When the order does not serialize (it always does).
pub fn order_item(record: &OrderRecord) -> Result<Item, String> {
    let order = &record.order;
    let (order_id, status) = (order.order_id(), order.status.as_str());
    let updated = order
        .updated_at
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let Value::Object(fields) = serde_json::to_value(order).map_err(|e| e.to_string())? else {
        return Err("an order must serialize to a JSON object".to_owned());
    };
    let mut item: Item = fields.iter().map(|(k, v)| (k.clone(), attr(v))).collect();
    let s = |v: String| AttributeValue::S(v);
    item.insert(PK.into(), s(keys::customer_pk(order.customer_id())));
    item.insert(SK.into(), s(keys::order_sk(order_id)));
    item.insert(GSI1PK.into(), s(keys::order_gsi1pk(order_id)));
    item.insert(GSI1SK.into(), s(keys::ORDER_GSI1SK.to_owned()));
    item.insert(
        GSI2PK.into(),
        s(keys::order_status_gsi2pk(status, order_id)),
    );
    item.insert(
        GSI2SK.into(),
        s(keys::order_status_gsi2sk(&updated, order_id)),
    );
    item.insert(TYPE.into(), s(ORDER_TYPE.to_owned()));
    item.insert(
        VERSION.into(),
        AttributeValue::N(record.version.to_string()),
    );
    item.insert(
        APPLIED.into(),
        AttributeValue::L(record.applied.iter().cloned().map(s).collect()),
    );
    Ok(item)
}

/// The record an order item holds.
///
/// # Errors
/// What is missing or malformed.
pub fn order_from_item(item: &Item) -> Result<OrderRecord, String> {
    let version = match item.get(VERSION) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|e| format!("`{VERSION}`: {e}"))?,
        _ => return Err(format!("`{VERSION}` is missing or not a number")),
    };
    let applied = match item.get(APPLIED) {
        Some(AttributeValue::L(ids)) => ids
            .iter()
            .map(|id| {
                id.as_s()
                    .cloned()
                    .map_err(|_| format!("`{APPLIED}` holds a non-string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("`{APPLIED}` is missing or not a list")),
    };
    let fields = item
        .iter()
        .filter(|(k, _)| !NOT_ORDER_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| Ok((k.clone(), json(v)?)))
        .collect::<Result<Map<String, Value>, String>>()?;
    let order: Order = serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
    Ok(OrderRecord {
        order,
        version,
        applied,
    })
}

/// The item of an outbox row of `order`.
pub fn outbox_item(order: &Order, row: &OutboxRow) -> Result<Item, serde_json::Error> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let body = serde_json::to_string(&row.envelope)?;
    Ok(Item::from([
        (PK.into(), s(&keys::customer_pk(order.customer_id()))),
        (SK.into(), s(&keys::outbox_sk(order.order_id(), row.id()))),
        (TYPE.into(), s(OUTBOX_TYPE)),
        (ORDER_ID.into(), s(order.order_id())),
        (EVENT_ID.into(), s(row.id())),
        (EVENT_TYPE.into(), s(&row.envelope.header.event_type)),
        (BODY.into(), AttributeValue::S(body)),
    ]))
}

/// The outbox row an item holds.
///
/// # Errors
/// When the body is missing or is not a Fleet message.
pub fn outbox_from_item(item: &Item) -> Result<OutboxRow, String> {
    let body = item
        .get(BODY)
        .and_then(|b| b.as_s().ok())
        .ok_or_else(|| format!("outbox row without `{BODY}`"))?;
    let envelope = fleet_schemas::decode(body).map_err(|e| format!("outbox row: {e}"))?;
    Ok(OutboxRow { envelope })
}

/// A JSON value as an attribute: objects become maps, arrays lists, numbers numbers.
pub fn attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(attr).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
        }
    }
}

/// An attribute as JSON (the inverse of [`attr`] for what it makes).
///
/// # Errors
/// For a number JSON cannot hold, or a set or binary attribute.
pub fn json(value: &AttributeValue) -> Result<Value, String> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(json).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unexpected attribute {other:?}")),
    })
}

fn number(n: &str) -> Result<Number, String> {
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| format!("{n:?} is not a number JSON can hold"))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::orders::order::{OrderStatus, Payment};

    fn record() -> OrderRecord {
        let placed = serde_json::from_value(json!({
            "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total_cents": u64::MAX,
            "items": [{"sku": "A", "quantity": 1, "unit_price_cents": u64::MAX}],
            "customer_email": "ada@example.com",
        }))
        .unwrap();
        let mut order = Order::new(
            placed,
            Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap(),
        );
        order.payment = Some(Payment {
            payment_id: "p".into(),
            amount_cents: u64::MAX,
        });
        order.status = OrderStatus::Paid;
        OrderRecord {
            order,
            version: 2,
            applied: vec!["e-1".into(), "e-2".into()],
        }
    }

    #[test]
    fn an_order_round_trips_with_its_keys() {
        let record = record();
        let item = order_item(&record).unwrap();
        let s = |k: &str| item[k].as_s().unwrap().clone();
        assert_eq!(s(PK), "USER#c-1");
        assert_eq!(s(SK), "ORDER#o-1");
        assert_eq!(s(GSI1PK), "ORDER#o-1");
        assert_eq!(s(GSI1SK), "ORDER");
        assert!(s(GSI2PK).starts_with("STATUS#paid#"), "{}", s(GSI2PK));
        assert_eq!(s(GSI2SK), "2026-11-26T15:00:00.000Z#o-1");
        assert_eq!(s("status"), "paid");
        assert_eq!(item["total_cents"].as_n().unwrap(), &u64::MAX.to_string());
        assert!(item["items"].as_l().unwrap()[0].as_m().is_ok());
        assert_eq!(order_from_item(&item).unwrap(), record);
    }

    #[test]
    fn a_malformed_item_says_what_is_wrong() {
        let mut item = order_item(&record()).unwrap();
        item.remove("currency");
        assert!(order_from_item(&item).unwrap_err().contains("currency"));
        item.remove(VERSION);
        assert_eq!(
            order_from_item(&item).unwrap_err(),
            "`version` is missing or not a number"
        );
    }

    #[test]
    fn json_numbers_and_nesting_survive() {
        let v = json!({"a": [1, -2, 2.5, null, true, "x"], "b": {"c": u64::MAX}});
        assert_eq!(json(&attr(&v)).unwrap(), v);
    }
}
