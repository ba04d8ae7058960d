//! Numbers and lists with bounds, checked when deserializing and stated in the JSON Schema.

use std::borrow::Cow;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SchemaError;

/// A whole number in `MIN..=MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Count<const MIN: u32, const MAX: u32>(u32);

impl<const MIN: u32, const MAX: u32> Count<MIN, MAX> {
    /// Checks that `n` is in range.
    ///
    /// # Errors
    /// `InvalidValue` when it is not.
    pub fn new(n: u32) -> Result<Self, SchemaError> {
        Self::check(u64::from(n)).map_err(|reason| SchemaError::InvalidValue { reason })
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    fn check(n: u64) -> Result<Self, String> {
        match u32::try_from(n) {
            Ok(v) if (MIN..=MAX).contains(&v) => Ok(Self(v)),
            _ => Err(format!("expected {MIN} to {MAX}, got {n}")),
        }
    }
}

impl<const MIN: u32, const MAX: u32> Serialize for Count<MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(deserializer)?;
        Self::check(n).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: u32, const MAX: u32> JsonSchema for Count<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Count_{MIN}_{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": MIN,
            "maximum": MAX,
        })
    }
}

/// A list of `MIN..=MAX` elements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct List<T, const MIN: usize, const MAX: usize>(Vec<T>);

impl<T, const MIN: usize, const MAX: usize> List<T, MIN, MAX> {
    /// Checks that `items` has an allowed length.
    ///
    /// # Errors
    /// `InvalidValue` when it has too few or too many elements.
    pub fn new(items: Vec<T>) -> Result<Self, SchemaError> {
        Self::check(items).map_err(|reason| SchemaError::InvalidValue { reason })
    }

    /// The elements, owned.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }

    fn check(items: Vec<T>) -> Result<Self, String> {
        if (MIN..=MAX).contains(&items.len()) {
            Ok(Self(items))
        } else {
            Err(format!(
                "expected {MIN} to {MAX} items, got {}",
                items.len()
            ))
        }
    }
}

impl<T, const MIN: usize, const MAX: usize> Deref for List<T, MIN, MAX> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Serialize, const MIN: usize, const MAX: usize> Serialize for List<T, MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MIN: usize, const MAX: usize> Deserialize<'de>
    for List<T, MIN, MAX>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(deserializer)?;
        Self::check(items).map_err(serde::de::Error::custom)
    }
}

impl<T: JsonSchema, const MIN: usize, const MAX: usize> JsonSchema for List<T, MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("List_{}_{MIN}_{MAX}", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("fleet_schemas::List<{}, {MIN}, {MAX}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": generator.subschema_for::<T>(),
            "minItems": MIN,
            "maxItems": MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_range_checked() {
        assert_eq!(Count::<1, 10>::new(10).unwrap().get(), 10);
        assert!(Count::<1, 10>::new(0).is_err());
        let err = serde_json::from_str::<Count<1, 10>>("11").unwrap_err();
        assert!(
            err.to_string().contains("expected 1 to 10, got 11"),
            "{err}"
        );
        assert!(serde_json::from_str::<Count<1, 10>>("99999999999").is_err());
        assert!(serde_json::from_str::<Count<1, 10>>("-1").is_err());
        assert!(serde_json::from_str::<Count<1, 10>>("1.5").is_err());
    }

    #[test]
    fn lists_are_length_checked() {
        assert!(List::<u8, 1, 2>::new(vec![1]).is_ok());
        assert!(List::<u8, 1, 2>::new(vec![]).is_err());
        let err = serde_json::from_str::<List<u8, 1, 2>>("[1,2,3]").unwrap_err();
        assert!(
            err.to_string().contains("expected 1 to 2 items, got 3"),
            "{err}"
        );
    }
}
