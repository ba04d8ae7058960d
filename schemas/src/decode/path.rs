//! Deserializing a payload from a JSON value while keeping track of where each value sits, so a
//! serde error becomes "`payload.items[2].quantity`: expected 1 to 10000, got 0" instead of a bare
//! message. (The `serde_path_to_error` crate does this in general; Fleet's payloads only need the
//! subset below.)

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::{Map, Value};

use super::json::whole;
use crate::error::SchemaError;

/// Deserializes `value`, naming the failing field by its path below `root`.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, SchemaError> {
    let tracked = Tracked {
        value,
        path: root.to_owned(),
    };
    T::deserialize(tracked).map_err(|e| e.at(root).into_schema_error())
}

/// A deserialization error with the path of the value it is about.
#[derive(Debug)]
pub(crate) struct PathError {
    path: Option<String>,
    missing: Option<&'static str>,
    message: String,
}

impl PathError {
    /// Records where the error happened, unless a deeper value already did.
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_owned());
        }
        self
    }

    fn into_schema_error(self) -> SchemaError {
        let path = self.path.unwrap_or_default();
        match self.missing {
            Some(field) if path.is_empty() => SchemaError::missing(field),
            Some(field) => SchemaError::missing(format!("{path}.{field}")),
            None => SchemaError::invalid(path, self.message),
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PathError {}

impl de::Error for PathError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PathError {
            path: None,
            missing: None,
            message: msg.to_string(),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        PathError {
            path: None,
            missing: Some(field),
            message: format!("missing field `{field}`"),
        }
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// Integer targets take a whole float as its integer (`4493.0` is `4493`), as JSON Schema's
/// `integer` does; a fraction, or a whole number past 64 bits, stays a float and is refused by the
/// target. Only integer targets: a free-form value (analytics `properties`) keeps what was sent.
macro_rules! whole_numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
            self.whole().deserialize_any(visitor)
        }
    )*};
}

/// A JSON value and its path.
struct Tracked {
    value: Value,
    path: String,
}

impl<'de> Deserializer<'de> for Tracked {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => Err(de::Error::custom("number out of range")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Elements::new(items, self.path)),
            Value::Object(map) => visitor.visit_map(Entries::new(map, self.path)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants only (`"carrier": "ups"`), which is all Fleet's enums have.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
        }
    }

    /// Structs and maps come from objects only (serde would also take an array for a struct).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.value {
            Value::Object(map) => visitor.visit_map(Entries::new(map, self.path)),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.value {
            Value::Array(items) => visitor.visit_seq(Elements::new(items, self.path)),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    whole_numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

impl Tracked {
    fn whole(self) -> Self {
        match &self.value {
            Value::Number(n) => match whole(n) {
                Some(integer) => Tracked {
                    value: Value::Number(integer),
                    path: self.path,
                },
                None => self,
            },
            _ => self,
        }
    }
}

/// The elements of an array, each with its index in the path.
struct Elements {
    items: std::vec::IntoIter<Value>,
    index: usize,
    path: String,
}

impl Elements {
    fn new(items: Vec<Value>, path: String) -> Self {
        Self {
            items: items.into_iter(),
            index: 0,
            path,
        }
    }
}

impl<'de> SeqAccess<'de> for Elements {
    type Error = PathError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        let tracked = Tracked {
            value,
            path: path.clone(),
        };
        seed.deserialize(tracked).map(Some).map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object, each value with its key in the path.
struct Entries {
    entries: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
    path: String,
}

impl Entries {
    fn new(map: Map<String, Value>, path: String) -> Self {
        Self {
            entries: map.into_iter(),
            pending: None,
            path,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = PathError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, PathError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value asked for before its key"));
        };
        let path = if self.path.is_empty() {
            key
        } else {
            format!("{}.{key}", self.path)
        };
        let tracked = Tracked {
            value,
            path: path.clone(),
        };
        seed.deserialize(tracked).map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AnalyticsTracked, EmailRequested, OrderCancelled, OrderPlaced};
    use serde_json::json;

    fn placed() -> Value {
        json!({"order_id": "o", "customer_id": "c", "total_cents": 1, "currency": "EUR",
               "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]})
    }

    fn fails<T: DeserializeOwned + fmt::Debug>(value: Value) -> SchemaError {
        match from_value::<T>(value, "payload") {
            Ok(v) => panic!("accepted {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_name_the_path() {
        let mut v = placed();
        v["items"][0]["quantity"] = json!(0);
        let e = fails::<OrderPlaced>(v);
        assert_eq!(e.field(), Some("payload.items[0].quantity"), "{e}");
        assert!(e.to_string().contains("expected 1 to 10000, got 0"), "{e}");

        let mut v = placed();
        v["items"][0].as_object_mut().unwrap().remove("sku");
        let e = fails::<OrderPlaced>(v);
        assert_eq!(e.label(), "missing_field");
        assert_eq!(e.field(), Some("payload.items[0].sku"));

        let mut v = placed();
        v["total_cents"] = json!("1");
        let e = fails::<OrderPlaced>(v);
        assert_eq!(e.field(), Some("payload.total_cents"), "{e}");
        assert!(
            e.to_string()
                .contains("invalid type: string \"1\", expected u64"),
            "{e}"
        );
    }

    #[test]
    fn enums_options_and_content_keep_paths() {
        let e = fails::<OrderCancelled>(json!({"order_id": "o", "reason": "bored"}));
        assert_eq!(e.field(), Some("payload.reason"));
        assert!(e.to_string().contains("unknown variant `bored`"), "{e}");
        let e = fails::<OrderCancelled>(json!({"order_id": "o", "reason": "other", "note": 5}));
        assert_eq!(e.field(), Some("payload.note"), "{e}");
        let e = fails::<EmailRequested>(
            json!({"to": "a@b.co", "content": {"kind": "direct", "text": "x"}}),
        );
        assert_eq!(e.field(), Some("payload.content.subject"), "{e}");
        let e = fails::<EmailRequested>(
            json!({"to": "a@b.co", "content": {"kind": "direct", "subject": "", "text": "x"}}),
        );
        assert_eq!(e.field(), Some("payload.content.subject"), "{e}");
    }

    #[test]
    fn integer_fields_take_whole_floats_and_free_form_values_keep_them() {
        let mut v = placed();
        v["total_cents"] = json!(4493.0);
        v["items"][0]["quantity"] = json!(2.0);
        let order: OrderPlaced = from_value(v, "payload").unwrap();
        assert_eq!(
            (order.total_cents, order.items[0].quantity.get()),
            (4493, 2)
        );
        let mut v = placed();
        v["total_cents"] = json!(4493.5);
        let e = fails::<OrderPlaced>(v);
        assert_eq!(e.field(), Some("payload.total_cents"), "{e}");
        assert!(e.to_string().contains("floating point `4493.5`"), "{e}");
        let tracked: AnalyticsTracked = from_value(
            json!({"name": "n", "subject": "s", "properties": {"price": 4493.0},
                   "timestamp": "2026-11-26T15:00:00Z"}),
            "payload",
        )
        .unwrap();
        assert_eq!(tracked.properties["price"], json!(4493.0));
        assert!(
            tracked.properties["price"].is_f64(),
            "sent as a float, kept as one"
        );
    }

    #[test]
    fn structs_need_objects() {
        let e = fails::<OrderPlaced>(json!(["o", "c", [], 1, "EUR"]));
        assert_eq!(e.field(), Some("payload"), "{e}");
        let e = fails::<OrderPlaced>(json!(null));
        assert_eq!(e.label(), "invalid_field", "{e}");
    }
}
