//! Order events without money: shipped and cancelled. Version 1 carried the carrier and the
//! cancellation reason as free text; version 2 has closed enums.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::order::Id;
use super::upgrade::{object, take_string};
use crate::event::Event;
use crate::text::{Line, Prose};

/// Longest cancellation note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// Who carries a shipment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// UPS.
    Ups,
    /// DHL.
    Dhl,
    /// FedEx.
    Fedex,
    /// USPS.
    Usps,
    /// PostNL.
    Postnl,
    /// Any other carrier.
    Other,
}

impl Carrier {
    /// Every carrier, in declaration order.
    pub const ALL: [Carrier; 6] = [
        Carrier::Ups,
        Carrier::Dhl,
        Carrier::Fedex,
        Carrier::Usps,
        Carrier::Postnl,
        Carrier::Other,
    ];

    /// The wire name, such as `postnl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Ups => "ups",
            Carrier::Dhl => "dhl",
            Carrier::Fedex => "fedex",
            Carrier::Usps => "usps",
            Carrier::Postnl => "postnl",
            Carrier::Other => "other",
        }
    }

    /// Reads a version-1 free-text carrier (`"UPS"`, `"FedEx"`, `"Post NL"`); anything else is
    /// `other`.
    pub fn from_text(text: &str) -> Carrier {
        let key: String = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Carrier::ALL
            .into_iter()
            .find(|c| c.as_str() == key)
            .unwrap_or(Carrier::Other)
    }
}

/// `order.shipped`: an order left the warehouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "order.shipped payload")]
pub struct OrderShipped {
    /// The order.
    pub order_id: Id,
    /// Who carries it.
    pub carrier: Carrier,
    /// The carrier's tracking number, 1 to 64 characters.
    pub tracking_number: Line<1, 64>,
}

impl Event for OrderShipped {
    const TYPE: &'static str = "order.shipped";
    const VERSION: u32 = 2;

    /// Version 1: `carrier` was free text.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        let mut map = object(payload)?;
        let carrier = Carrier::from_text(&take_string(&mut map, "carrier")?);
        map.insert("carrier".into(), carrier.as_str().into());
        Ok(Value::Object(map))
    }
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The customer asked for it.
    CustomerRequest,
    /// The payment did not go through.
    PaymentFailed,
    /// Something ordered is not available.
    OutOfStock,
    /// The order looks fraudulent.
    Fraud,
    /// Another reason, explained in the note.
    Other,
}

impl CancelReason {
    /// Every reason, in declaration order.
    pub const ALL: [CancelReason; 5] = [
        CancelReason::CustomerRequest,
        CancelReason::PaymentFailed,
        CancelReason::OutOfStock,
        CancelReason::Fraud,
        CancelReason::Other,
    ];

    /// The wire name, such as `out_of_stock`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::CustomerRequest => "customer_request",
            CancelReason::PaymentFailed => "payment_failed",
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::Fraud => "fraud",
            CancelReason::Other => "other",
        }
    }

    /// Reads a version-1 free-text reason that names a reason (`"Out of stock"`), if it does.
    pub fn from_text(text: &str) -> Option<CancelReason> {
        let key: String = text
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        CancelReason::ALL.into_iter().find(|r| r.as_str() == key)
    }
}

/// `order.cancelled`: an order will not be fulfilled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "order.cancelled payload")]
pub struct OrderCancelled {
    /// The order.
    pub order_id: Id,
    /// Why.
    pub reason: CancelReason,
    /// More words on why, at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Prose<0, MAX_NOTE_CHARS>>,
}

impl Event for OrderCancelled {
    const TYPE: &'static str = "order.cancelled";
    const VERSION: u32 = 2;

    /// Version 1: `reason` was free text. Text naming a reason becomes that reason; any other
    /// text becomes `other` with the text (cut to 500 characters) as the note.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        let mut map = object(payload)?;
        let text = take_string(&mut map, "reason")?;
        let reason = CancelReason::from_text(&text);
        map.insert(
            "reason".into(),
            reason.unwrap_or(CancelReason::Other).as_str().into(),
        );
        let note: String = text.trim().chars().take(MAX_NOTE_CHARS).collect();
        if reason.is_none() && !note.is_empty() {
            map.insert("note".into(), note.into());
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shipped_v1_carrier_text_maps_to_the_enum() {
        for (text, carrier) in [
            ("UPS", "ups"),
            ("FedEx", "fedex"),
            ("Post NL", "postnl"),
            ("dhl", "dhl"),
            ("Royal Mail", "other"),
            ("", "other"),
        ] {
            let v1 = json!({"order_id": "o", "carrier": text, "tracking_number": "T"});
            let v2 = OrderShipped::upgrade_previous(v1).unwrap();
            assert_eq!(v2["carrier"], carrier, "{text}");
            let shipped: OrderShipped = serde_json::from_value(v2).unwrap();
            assert_eq!(shipped.carrier.as_str(), carrier);
        }
        let err = OrderShipped::upgrade_previous(json!({"order_id": "o"})).unwrap_err();
        assert_eq!(err, "missing field `carrier`");
    }

    #[test]
    fn cancelled_v1_reason_text_becomes_a_reason_or_a_note() {
        let up = |text: &str| {
            OrderCancelled::upgrade_previous(json!({"order_id": "o", "reason": text})).unwrap()
        };
        assert_eq!(
            up("Out of stock"),
            json!({"order_id": "o", "reason": "out_of_stock"})
        );
        assert_eq!(up("fraud"), json!({"order_id": "o", "reason": "fraud"}));
        assert_eq!(
            up(" changed my mind "),
            json!({"order_id": "o", "reason": "other", "note": "changed my mind"})
        );
        assert_eq!(up(""), json!({"order_id": "o", "reason": "other"}));
        let long = up(&"é".repeat(600));
        assert_eq!(long["note"].as_str().unwrap().chars().count(), 500);
        let cancelled: OrderCancelled = serde_json::from_value(long).unwrap();
        assert_eq!(cancelled.reason, CancelReason::Other);
        let err =
            OrderCancelled::upgrade_previous(json!({"order_id": "o", "reason": 3})).unwrap_err();
        assert_eq!(err, "`reason` must be a string, got number");
    }

    #[test]
    fn enums_are_strict() {
        let bad = json!({"order_id": "o", "carrier": "UPS", "tracking_number": "T"});
        assert!(serde_json::from_value::<OrderShipped>(bad).is_err());
        let bad = json!({"order_id": "o", "reason": "bored"});
        assert!(serde_json::from_value::<OrderCancelled>(bad).is_err());
    }
}
