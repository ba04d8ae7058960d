//! Helpers for upgrading version-1 payloads: they work on JSON values, so they never need the
//! old version's types, and every error names the old field.

use serde_json::{Map, Value};

use crate::codes::minor_unit_digits;

/// The payload as an object.
pub(crate) fn object(payload: Value) -> Result<Map<String, Value>, String> {
    match payload {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected an object, got {}", json_kind(&other))),
    }
}

/// The JSON type of a value, in words.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Removes a required field.
pub(crate) fn take(map: &mut Map<String, Value>, field: &str) -> Result<Value, String> {
    map.remove(field)
        .ok_or_else(|| format!("missing field `{field}`"))
}

/// Removes a required string field.
pub(crate) fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<String, String> {
    match take(map, field)? {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "`{field}` must be a string, got {}",
            json_kind(&other)
        )),
    }
}

/// Renames a required field.
pub(crate) fn rename(map: &mut Map<String, Value>, from: &str, to: &str) -> Result<(), String> {
    let value = take(map, from)?;
    map.insert(to.to_owned(), value);
    Ok(())
}

/// Digits of the minor unit of the payload's currency (2 when it has none: the currency check of
/// the current version reports that).
pub(crate) fn currency_digits(map: &Map<String, Value>) -> u32 {
    map.get("currency")
        .and_then(Value::as_str)
        .map_or(2, minor_unit_digits)
}

/// Replaces the decimal string `prefix + from` (such as `"12.50"`) by the integer `to` in minor
/// units (`1250`).
pub(crate) fn money(
    map: &mut Map<String, Value>,
    prefix: &str,
    (from, to): (&str, &str),
    digits: u32,
) -> Result<(), String> {
    let field = format!("{prefix}{from}");
    let text = match map.remove(from) {
        None => return Err(format!("missing field `{field}`")),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "`{field}` must be a decimal string such as \"12.50\", got {}",
                json_kind(&other)
            ));
        }
    };
    let minor = parse_decimal(&text, digits).map_err(|e| format!("`{field}`: {e}"))?;
    map.insert(to.to_owned(), minor.into());
    Ok(())
}

/// Parses a non-negative decimal amount into minor units with `digits` decimal places. Extra
/// decimal places are allowed only when they are zeros: an upgrade never rounds money.
pub(crate) fn parse_decimal(text: &str, digits: u32) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a decimal amount such as \"12.50\"");
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return Err(format!("{text:?} ends in a decimal point")),
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(bad());
    }
    let places = usize::try_from(digits).unwrap_or(usize::MAX);
    let (kept, rest) = fraction.split_at(fraction.len().min(places));
    if rest.bytes().any(|b| b != b'0') {
        return Err(format!(
            "{text:?} has more than {digits} decimal places; amounts are never rounded"
        ));
    }
    let too_large = || format!("{text:?} is too large");
    let scale = 10u64.checked_pow(digits).ok_or_else(too_large)?;
    let kept_len = u32::try_from(kept.len()).map_err(|_| too_large())?;
    let kept_scale = 10u64
        .checked_pow(digits.saturating_sub(kept_len))
        .ok_or_else(too_large)?;
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let kept: u64 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(scale)
        .and_then(|w| kept.checked_mul(kept_scale).and_then(|k| w.checked_add(k)))
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_minor_units() {
        for (text, digits, minor) in [
            ("12.50", 2, 1250),
            ("12.5", 2, 1250),
            ("12", 2, 1200),
            ("0.01", 2, 1),
            ("007.10", 2, 710),
            ("12.500", 2, 1250),
            ("1250", 0, 1250),
            ("1250.0", 0, 1250),
            ("1.234", 3, 1234),
            ("0", 2, 0),
        ] {
            assert_eq!(parse_decimal(text, digits), Ok(minor), "{text}");
        }
    }

    #[test]
    fn malformed_decimals_are_refused_with_a_reason() {
        for (text, digits, says) in [
            ("", 2, "not a decimal amount"),
            ("12.5x", 2, "not a decimal amount"),
            ("-1.00", 2, "not a decimal amount"),
            ("+1.00", 2, "not a decimal amount"),
            ("1e3", 2, "not a decimal amount"),
            (".50", 2, "not a decimal amount"),
            ("1,50", 2, "not a decimal amount"),
            (" 1.50", 2, "not a decimal amount"),
            ("1.", 2, "ends in a decimal point"),
            ("12.505", 2, "more than 2 decimal places"),
            ("12.5", 0, "more than 0 decimal places"),
            ("184467440737095516.16", 2, "too large"),
            ("99999999999999999999999", 2, "too large"),
            ("1.٣", 2, "not a decimal amount"),
        ] {
            let err = parse_decimal(text, digits).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn money_fields_are_renamed_and_converted() {
        let mut map = object(serde_json::json!({"total": "3.00", "x": 1})).unwrap();
        money(&mut map, "", ("total", "total_cents"), 2).unwrap();
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"total_cents": 300, "x": 1})
        );
        let mut map = object(serde_json::json!({"total": 3})).unwrap();
        let err = money(&mut map, "", ("total", "total_cents"), 2).unwrap_err();
        assert!(err.contains("`total` must be a decimal string"), "{err}");
        let mut map = Map::new();
        let err = money(&mut map, "items[1].", ("unit_price", "x"), 2).unwrap_err();
        assert_eq!(err, "missing field `items[1].unit_price`");
    }
}
