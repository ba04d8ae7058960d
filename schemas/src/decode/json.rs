//! Parsing one JSON text, more strictly than `serde_json::from_str`: a duplicate key or a byte
//! order mark is an error, not a silent choice. Nesting is bounded by serde_json's recursion
//! limit (128), so no input can exhaust the stack.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::SchemaError;

/// Parses `text` as exactly one JSON value.
pub(crate) fn parse(text: &str) -> Result<Value, SchemaError> {
    if text.starts_with('\u{feff}') {
        // RFC 8259 forbids senders to add one; taking it would hide a producer bug.
        return Err(SchemaError::InvalidJson {
            line: 1,
            column: 1,
            source: de::Error::custom("body starts with a byte order mark (U+FEFF)"),
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let Strict(value) = Strict::deserialize(&mut de).map_err(SchemaError::json)?;
    de.end().map_err(SchemaError::json)?;
    Ok(value)
}

/// Whether a JSON number is a whole number: an integer, or a float with no fraction (`4493.0`,
/// `4.493e3`), as JSON Schema's `integer` counts it.
pub(crate) fn is_whole(n: &Number) -> bool {
    n.is_u64()
        || n.is_i64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// The integer a whole JSON number stands for, when it fits in 64 bits (`u64` or `i64`).
/// Python and Java producers write whole amounts as floats (`4493.0`); they mean the integer.
pub(crate) fn whole(n: &Number) -> Option<Number> {
    if n.is_u64() || n.is_i64() {
        return Some(n.clone());
    }
    // 2^64 and -2^63 are exact as floats; `as` would saturate past them, so they bound the range.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    let f = n.as_f64().filter(|_| is_whole(n))?;
    match f {
        f if (0.0..TWO_POW_64).contains(&f) => Some(Number::from(f as u64)),
        f if (MINUS_TWO_POW_63..0.0).contains(&f) => Some(Number::from(f as i64)),
        _ => None,
    }
}

/// A JSON value whose objects have no duplicate keys. Parsers disagree on which duplicate wins,
/// so a producer and a worker could read different messages from the same bytes.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Strict(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match parse(text) {
            Err(e @ SchemaError::InvalidJson { .. }) => {
                format!(
                    "{e}: {}",
                    std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let text =
            r#"{"a": [1, -2, 3.5, "x\u00e9", true, null, {}], "b": {"c": 18446744073709551615}}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_duplicates_boms_garbage_and_depth() {
        assert!(error(r#"{"a": 1, "b": {"c": 1, "c": 2}}"#).contains("duplicate key \"c\""));
        assert!(error("\u{feff}{}").contains("byte order mark"));
        assert!(error("{} x").contains("trailing characters"));
        assert!(error(r#"{"a": "\x"}"#).contains("invalid escape"));
        assert!(error(r#"{"a": "\ud800"}"#).contains("hex escape"));
        assert!(error(r#"{"a": "\udc00"}"#).contains("surrogate"));
        assert!(error(r#"{"a": "#).contains("EOF"));
        assert!(error(&"[".repeat(10_000)).contains("recursion limit"));
    }

    #[test]
    fn whole_numbers_are_integers_whatever_their_spelling() {
        let number = |text: &str| match parse(text).unwrap() {
            Value::Number(n) => n,
            other => panic!("{other}"),
        };
        for (text, expected) in [
            ("4493", Some(Value::from(4493u64))),
            ("4493.0", Some(Value::from(4493u64))),
            ("4.493e3", Some(Value::from(4493u64))),
            ("-0.0", Some(Value::from(0u64))),
            ("-7.0", Some(Value::from(-7i64))),
            ("18446744073709551615", Some(Value::from(u64::MAX))),
            ("1e19", Some(Value::from(10_000_000_000_000_000_000u64))),
            ("-9223372036854775808.0", Some(Value::from(i64::MIN))),
            ("4493.5", None),
            ("0.1", None),
            // 2^64, whatever the spelling, and past i64's range below zero: out of range.
            ("18446744073709551616", None),
            ("1.8446744073709552e19", None),
            ("-9223372036854777856.0", None),
            ("1e300", None),
        ] {
            assert_eq!(whole(&number(text)).map(Value::Number), expected, "{text}");
        }
        assert!(is_whole(&number("1e300")));
        assert!(!is_whole(&number("2.5")));
    }

    #[test]
    fn errors_carry_the_position() {
        let Err(SchemaError::InvalidJson { line, column, .. }) =
            parse("{\n  \"a\": 1,\n  \"a\": 2\n}")
        else {
            panic!("duplicate accepted");
        };
        assert_eq!(line, 3, "column {column}");
    }
}
