//! The shipped `order_confirmation` template against the data the orders worker really sends,
//! so that the template, its `sample.json` and the producer cannot drift apart.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use fleet_schemas::{EmailContent, Envelope, FleetEvent, OrderPlaced};
use serde_json::{Map, Value, json};

use super::render::Templates;
use crate::orders::outgoing::caused_by;
use crate::orders::{CONFIRMATION_TEMPLATE, Order, OrderEvent};

fn shipped() -> Templates {
    Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates")).unwrap()
}

/// The template name and data of the confirmation the orders worker asks for on `payload`.
fn confirmation(payload: Value) -> (String, Map<String, Value>) {
    let placed: OrderPlaced = serde_json::from_value(payload).unwrap();
    let cause = Envelope::new(placed.clone(), "checkout").map(OrderEvent::from);
    let order = Order::new(placed, cause.header.occurred_at);
    let email = caused_by(&cause, &order)
        .into_iter()
        .find_map(|e| match e.payload {
            FleetEvent::EmailRequested(email) => Some(email),
            _ => None,
        })
        .unwrap();
    match email.content {
        EmailContent::Template { template, data } => (template.to_string(), data),
        other => panic!("not a template email: {other:?}"),
    }
}

fn placed(currency: &str, unit_price_cents: i64, total_cents: i64) -> Value {
    json!({
        "order_id": "o-1001", "customer_id": "c-42", "customer_email": "ada@example.com",
        "currency": currency, "total_cents": total_cents,
        "items": [{"sku": "TEE-BLK-M", "quantity": 2, "unit_price_cents": unit_price_cents}],
    })
}

#[test]
fn the_orders_workers_confirmation_renders_with_the_shipped_template() {
    let (template, data) = confirmation(placed("EUR", 1999, 3998));
    assert_eq!(template, CONFIRMATION_TEMPLATE);
    let r = shipped().render(&template, &data).unwrap();
    assert_eq!(r.subject, "Your order o-1001 is confirmed");
    assert!(
        r.text.contains("- 2 x TEE-BLK-M at 19.99 EUR: 39.98 EUR\n"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Total: 39.98 EUR"), "{}", r.text);
    assert!(r.html.unwrap().contains("<strong>39.98 EUR</strong>"));
}

#[test]
fn a_zero_decimal_currency_renders_without_decimals() {
    let (template, data) = confirmation(placed("JPY", 1500, 3000));
    let r = shipped().render(&template, &data).unwrap();
    assert!(r.text.contains("at 1500 JPY: 3000 JPY"), "{}", r.text);
    assert!(r.text.contains("Total: 3000 JPY"), "{}", r.text);
}

#[test]
fn the_sample_has_exactly_the_keys_the_orders_worker_sends() {
    let (_, data) = confirmation(placed("EUR", 1999, 3998));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/templates")
        .join(CONFIRMATION_TEMPLATE)
        .join("sample.json");
    let sample: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&sample), keys(&data));
    let item_keys = |m: &Map<String, Value>| keys(m["items"][0].as_object().unwrap());
    assert_eq!(item_keys(&sample), item_keys(&data));
}
