//! Idempotency records as DynamoDB items: the Powertools attribute names and units, keyed by
//! `id` alone or, in the single table, by `PK`/`SK`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use fleet_bus::idempotency::{HolderToken, IdempotencyError, IdempotencyRecord, Status};

use crate::table::{self, keys};

/// The record's key (Powertools: the table's partition key).
pub const ID: &str = "id";
/// Epoch seconds: the table's TTL attribute.
pub const EXPIRATION: &str = table::EXPIRATION;
/// Epoch milliseconds: when the holder's lease ends.
pub const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
/// `INPROGRESS` or `COMPLETED`.
pub const STATUS: &str = "status";
/// The stored result.
pub const DATA: &str = "data";
/// The payload hash.
pub const VALIDATION: &str = "validation";
/// The holding claim's token (not a Powertools attribute; Powertools ignores it).
pub const HOLDER: &str = "holder";

/// How records are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// A table of its own whose partition key is `id` (S): the layout Powertools uses.
    Standalone,
    /// The workers' single table: `PK = IDEMPOTENCY#<key>`, `SK = IDEMPOTENCY`.
    SingleTable,
}

impl KeyMode {
    /// The primary key of the record of `key`.
    pub fn key(self, key: &str) -> HashMap<String, AttributeValue> {
        match self {
            KeyMode::Standalone => HashMap::from([(ID.to_owned(), s(key))]),
            KeyMode::SingleTable => HashMap::from([
                (table::PK.to_owned(), s(&keys::idempotency_pk(key))),
                (table::SK.to_owned(), s(keys::IDEMPOTENCY_SK)),
            ]),
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A number attribute.
pub fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute.
pub fn text(v: &str) -> AttributeValue {
    s(v)
}

/// The whole item of a record.
pub fn to_item(r: &IdempotencyRecord, mode: KeyMode) -> HashMap<String, AttributeValue> {
    let mut item = mode.key(&r.id);
    item.insert(ID.to_owned(), s(&r.id));
    item.insert(EXPIRATION.to_owned(), n(r.expiration));
    item.insert(
        IN_PROGRESS_EXPIRATION.to_owned(),
        n(r.in_progress_expiration),
    );
    item.insert(STATUS.to_owned(), s(r.status.as_str()));
    item.insert(VALIDATION.to_owned(), s(&r.validation));
    item.insert(HOLDER.to_owned(), s(r.holder.as_str()));
    if let Some(data) = &r.data {
        item.insert(DATA.to_owned(), s(data));
    }
    item
}

/// Reads a stored item of `key` back into a record.
///
/// # Errors
/// `Malformed` when an attribute is missing or of the wrong type.
pub fn from_item(
    key: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<IdempotencyRecord, IdempotencyError> {
    let bad = |reason: String| IdempotencyError::Malformed {
        key: key.to_owned(),
        reason,
    };
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        other => Err(bad(format!("{name} is {other:?}, not a string"))),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| bad(format!("{name} is {v}, not a whole number"))),
        other => Err(bad(format!("{name} is {other:?}, not a number"))),
    };
    let status = string(STATUS)?;
    Ok(IdempotencyRecord {
        id: string(ID)?,
        expiration: number(EXPIRATION)?,
        // Powertools leaves it out of completed records.
        in_progress_expiration: number(IN_PROGRESS_EXPIRATION).unwrap_or(0),
        status: Status::parse(&status).ok_or_else(|| bad(format!("status is {status}")))?,
        data: item.get(DATA).and_then(|v| v.as_s().ok()).cloned(),
        validation: string(VALIDATION)?,
        holder: HolderToken::from_stored(string(HOLDER).unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> IdempotencyRecord {
        IdempotencyRecord {
            id: "orders#e-1".into(),
            expiration: 1_800_000_000,
            in_progress_expiration: 1_800_000_000_123,
            status: Status::Completed,
            data: Some("{}".into()),
            validation: "abc".into(),
            holder: HolderToken::from_stored("h-1"),
        }
    }

    #[test]
    fn items_round_trip_in_both_key_modes() {
        let r = record();
        let standalone = to_item(&r, KeyMode::Standalone);
        assert_eq!(standalone.get("PK"), None);
        assert_eq!(from_item(&r.id, &standalone).unwrap(), r);
        let single = to_item(&r, KeyMode::SingleTable);
        assert_eq!(single["PK"], s("IDEMPOTENCY#orders#e-1"));
        assert_eq!(single["SK"], s("IDEMPOTENCY"));
        assert_eq!(single["expiration"], n(1_800_000_000));
        assert_eq!(single["status"], s("COMPLETED"));
        assert_eq!(from_item(&r.id, &single).unwrap(), r);
    }

    #[test]
    fn a_malformed_item_says_what_is_wrong() {
        let mut item = to_item(&record(), KeyMode::Standalone);
        item.insert(STATUS.into(), s("DONE"));
        let e = from_item("k", &item).unwrap_err();
        assert_eq!(
            e.to_string(),
            "idempotency record k is malformed: status is DONE"
        );
        item.remove(EXPIRATION);
        assert!(from_item("k", &item).is_err());
    }
}
