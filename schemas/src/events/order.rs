//! Order events: placed, paid, shipped, cancelled, refunded.
//!
//! Money is an integer in the currency's minor unit (`total_cents: 1250` is 12.50 EUR). Version 1
//! carried money as decimal strings (`"total": "12.50"`); its upgrade converts them exactly or
//! refuses them, and never rounds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::upgrade::{currency_digits, money, object};
use crate::bounded::{Count, List};
use crate::codes::{Currency, Email};
use crate::event::Event;
use crate::text::Line;

/// An order, customer or payment id: 1 to 64 characters.
pub type Id = Line<1, 64>;

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineItem {
    /// Stock keeping unit, 1 to 64 characters.
    pub sku: Line<1, 64>,
    /// Units ordered, 1 to 10,000.
    pub quantity: Count<1, 10_000>,
    /// Price of one unit in the currency's minor unit.
    pub unit_price_cents: u64,
}

/// `order.placed`: a customer placed an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "order.placed payload")]
pub struct OrderPlaced {
    /// The order.
    pub order_id: Id,
    /// The customer who placed it.
    pub customer_id: Id,
    /// What was ordered: 1 to 100 lines.
    pub items: List<LineItem, 1, 100>,
    /// What the customer pays, in the currency's minor unit (shipping and tax included).
    pub total_cents: u64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// Where the order confirmation goes; without it no confirmation is requested (added in
    /// version 2 without a version change: older producers leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<Email>,
}

impl OrderPlaced {
    /// The sum of quantity times unit price over the lines, if it fits in 64 bits.
    pub fn items_total_cents(&self) -> Option<u64> {
        self.items.iter().try_fold(0u64, |sum, item| {
            u64::from(item.quantity.get())
                .checked_mul(item.unit_price_cents)
                .and_then(|line| sum.checked_add(line))
        })
    }
}

impl Event for OrderPlaced {
    const TYPE: &'static str = "order.placed";
    const VERSION: u32 = 2;

    /// Version 1: `total` and each item's `unit_price` were decimal strings.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        let mut map = object(payload)?;
        let digits = currency_digits(&map);
        money(&mut map, "", ("total", "total_cents"), digits)?;
        if let Some(Value::Array(items)) = map.get_mut("items") {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::Object(item) = item {
                    let prefix = format!("items[{i}].");
                    money(item, &prefix, ("unit_price", "unit_price_cents"), digits)?;
                }
            }
        }
        Ok(Value::Object(map))
    }

    fn validate(&self) -> Result<(), String> {
        // Workers multiply and add these; an overflow there would be a panic or a wrong bill.
        match self.items_total_cents() {
            Some(_) => Ok(()),
            None => Err("items: quantity times unit_price_cents overflows 64 bits".to_owned()),
        }
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        vec![("currency", self.currency.to_string())]
    }
}

/// `order.paid`: a payment for an order succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "order.paid payload")]
pub struct OrderPaid {
    /// The order.
    pub order_id: Id,
    /// The payment provider's id of the payment.
    pub payment_id: Id,
    /// The amount paid, in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: Currency,
}

impl Event for OrderPaid {
    const TYPE: &'static str = "order.paid";
    const VERSION: u32 = 2;

    /// Version 1: `amount` was a decimal string.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        amount_from_decimal(payload)
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        vec![("currency", self.currency.to_string())]
    }
}

/// `order.refunded`: money for an order was paid back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "order.refunded payload")]
pub struct OrderRefunded {
    /// The order.
    pub order_id: Id,
    /// The payment provider's id of the refunded payment.
    pub payment_id: Id,
    /// The amount refunded, in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: Currency,
}

impl Event for OrderRefunded {
    const TYPE: &'static str = "order.refunded";
    const VERSION: u32 = 2;

    /// Version 1: `amount` was a decimal string.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        amount_from_decimal(payload)
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        vec![("currency", self.currency.to_string())]
    }
}

/// The version-1 to version-2 upgrade of payment-like payloads: `amount` (a decimal string)
/// becomes `amount_cents` in the currency's minor unit.
fn amount_from_decimal(payload: Value) -> Result<Value, String> {
    let mut map = object(payload)?;
    let digits = currency_digits(&map);
    money(&mut map, "", ("amount", "amount_cents"), digits)?;
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed_v1() -> Value {
        json!({
            "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total": "12.50",
            "items": [{"sku": "A", "quantity": 2, "unit_price": "4.25"},
                      {"sku": "B", "quantity": 1, "unit_price": "4"}],
            "coupon": "kept",
        })
    }

    #[test]
    fn placed_v1_money_becomes_cents_and_unknown_fields_stay() {
        let v2 = OrderPlaced::upgrade_previous(placed_v1()).unwrap();
        assert_eq!(
            v2,
            json!({
                "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total_cents": 1250,
                "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 425},
                          {"sku": "B", "quantity": 1, "unit_price_cents": 400}],
                "coupon": "kept",
            })
        );
        let placed: OrderPlaced = serde_json::from_value(v2).unwrap();
        assert_eq!(placed.items_total_cents(), Some(1250));
        assert!(placed.validate().is_ok());
    }

    #[test]
    fn the_customer_email_is_optional_and_checked() {
        let mut v2 = OrderPlaced::upgrade_previous(placed_v1()).unwrap();
        let placed: OrderPlaced = serde_json::from_value(v2.clone()).unwrap();
        assert_eq!(placed.customer_email, None);
        assert!(
            serde_json::to_value(&placed)
                .unwrap()
                .get("customer_email")
                .is_none()
        );
        v2["customer_email"] = json!("ada@example.com");
        let placed: OrderPlaced = serde_json::from_value(v2.clone()).unwrap();
        assert_eq!(placed.customer_email.unwrap().as_str(), "ada@example.com");
        v2["customer_email"] = json!("not an address");
        assert!(serde_json::from_value::<OrderPlaced>(v2).is_err());
    }

    #[test]
    fn placed_v1_uses_the_currency_minor_unit() {
        let mut v1 = placed_v1();
        v1["currency"] = json!("JPY");
        v1["total"] = json!("1250");
        v1["items"] = json!([{"sku": "A", "quantity": 1, "unit_price": "1250"}]);
        let v2 = OrderPlaced::upgrade_previous(v1).unwrap();
        assert_eq!(v2["total_cents"], 1250);
        assert_eq!(v2["items"][0]["unit_price_cents"], 1250);
    }

    #[test]
    fn placed_v1_with_a_malformed_decimal_is_refused_naming_the_field() {
        let mut v1 = placed_v1();
        v1["items"][1]["unit_price"] = json!("4,00");
        let err = OrderPlaced::upgrade_previous(v1).unwrap_err();
        assert!(err.starts_with("`items[1].unit_price`: \"4,00\""), "{err}");
        assert!(OrderPlaced::upgrade_previous(json!([1])).is_err());
    }

    #[test]
    fn paid_and_refunded_v1_amounts_become_cents() {
        let v1 = json!({"order_id": "o", "payment_id": "p", "amount": "3.00", "currency": "USD"});
        for v2 in [
            OrderPaid::upgrade_previous(v1.clone()).unwrap(),
            OrderRefunded::upgrade_previous(v1).unwrap(),
        ] {
            assert_eq!(
                v2,
                json!({"order_id": "o", "payment_id": "p", "amount_cents": 300, "currency": "USD"})
            );
        }
        let err = OrderPaid::upgrade_previous(json!({"amount": "3.001"})).unwrap_err();
        assert!(err.contains("more than 2 decimal places"), "{err}");
    }

    #[test]
    fn line_totals_that_overflow_are_rejected() {
        let mut v2 = OrderPlaced::upgrade_previous(placed_v1()).unwrap();
        v2["items"][0]["unit_price_cents"] = json!(u64::MAX);
        let placed: OrderPlaced = serde_json::from_value(v2).unwrap();
        assert!(placed.validate().unwrap_err().contains("overflows"));
    }

    #[test]
    fn money_events_route_by_currency() {
        let v2 = OrderPaid::upgrade_previous(
            json!({"order_id": "o", "payment_id": "p", "amount": "1", "currency": "EUR"}),
        )
        .unwrap();
        let paid: OrderPaid = serde_json::from_value(v2).unwrap();
        assert_eq!(paid.routing_keys(), vec![("currency", "EUR".to_owned())]);
    }
}
