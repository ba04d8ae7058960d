//! Strings that carry their rule: one generic [`Checked`] type, and a small [`Rule`] per kind of
//! string (bounded single-line text, bounded prose, currency codes, template names, email
//! addresses). The rule is checked when deserializing and when building a value in code, and the
//! same rule describes itself in the JSON Schema, so the two cannot drift apart.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SchemaError;

/// What a kind of string must look like.
pub trait Rule: Send + Sync + 'static {
    /// A short unique name for the rule, used in schema ids.
    fn name() -> Cow<'static, str>;
    /// Checks a string; the error says what is wrong in lowercase words.
    ///
    /// # Errors
    /// A description of the first rule the string breaks.
    fn check(s: &str) -> Result<(), String>;
    /// The JSON Schema that expresses the same rule.
    fn schema() -> Schema;
}

/// A string that satisfies the rule `R`.
pub struct Checked<R: Rule> {
    value: String,
    rule: PhantomData<fn() -> R>,
}

/// Single-line text of `MIN..=MAX` characters (Unicode scalar values) without control characters.
pub type Line<const MIN: usize, const MAX: usize> = Checked<LineRule<MIN, MAX>>;
/// Free text of `MIN..=MAX` characters; line breaks and tabs allowed, other control characters not.
pub type Prose<const MIN: usize, const MAX: usize> = Checked<ProseRule<MIN, MAX>>;

impl<R: Rule> Checked<R> {
    /// Checks `value` against the rule.
    ///
    /// # Errors
    /// `InvalidValue` saying which rule the value breaks.
    pub fn new(value: impl Into<String>) -> Result<Self, SchemaError> {
        let value = value.into();
        R::check(&value).map_err(|reason| SchemaError::InvalidValue { reason })?;
        Ok(Self {
            value,
            rule: PhantomData,
        })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The string, owned.
    pub fn into_inner(self) -> String {
        self.value
    }
}

/// Counts characters the way JSON Schema's `minLength`/`maxLength` do (code points).
pub(crate) fn check_length(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(format!("expected {min} to {max} characters, got {n}"));
    }
    Ok(())
}

fn length_schema(mut schema: Schema, min: usize, max: usize) -> Schema {
    if min > 0 {
        schema.insert("minLength".into(), min.into());
    }
    schema.insert("maxLength".into(), max.into());
    schema
}

/// The rule of [`Line`].
pub struct LineRule<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> Rule for LineRule<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        format!("Line_{MIN}_{MAX}").into()
    }

    fn check(s: &str) -> Result<(), String> {
        check_length(s, MIN, MAX)?;
        match s.chars().position(char::is_control) {
            Some(at) => Err(format!("control character at character {at}")),
            None => Ok(()),
        }
    }

    fn schema() -> Schema {
        let schema = json_schema!({
            "type": "string",
            "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        });
        length_schema(schema, MIN, MAX)
    }
}

/// The rule of [`Prose`].
pub struct ProseRule<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> Rule for ProseRule<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        format!("Prose_{MIN}_{MAX}").into()
    }

    fn check(s: &str) -> Result<(), String> {
        check_length(s, MIN, MAX)?;
        let bad = |c: &char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
        match s.chars().position(|c| bad(&c)) {
            Some(at) => Err(format!("control character at character {at}")),
            None => Ok(()),
        }
    }

    fn schema() -> Schema {
        let schema = json_schema!({
            "type": "string",
            "pattern": "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$",
        });
        length_schema(schema, MIN, MAX)
    }
}

impl<R: Rule> Deref for Checked<R> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.value
    }
}

impl<R: Rule> AsRef<str> for Checked<R> {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl<R: Rule> Clone for Checked<R> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            rule: PhantomData,
        }
    }
}

impl<R: Rule> PartialEq for Checked<R> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<R: Rule> Eq for Checked<R> {}

impl<R: Rule> Hash for Checked<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<R: Rule> fmt::Debug for Checked<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl<R: Rule> fmt::Display for Checked<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<R: Rule> FromStr for Checked<R> {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        Self::new(s)
    }
}

impl<R: Rule> TryFrom<String> for Checked<R> {
    type Error = SchemaError;

    fn try_from(s: String) -> Result<Self, SchemaError> {
        Self::new(s)
    }
}

impl<R: Rule> TryFrom<&str> for Checked<R> {
    type Error = SchemaError;

    fn try_from(s: &str) -> Result<Self, SchemaError> {
        Self::new(s)
    }
}

impl<R: Rule> Serialize for Checked<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de, R: Rule> Deserialize<'de> for Checked<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        R::check(&value).map_err(serde::de::Error::custom)?;
        Ok(Self {
            value,
            rule: PhantomData,
        })
    }
}

impl<R: Rule> JsonSchema for Checked<R> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        R::name()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("fleet_schemas::{}", R::name()).into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        R::schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_characters_and_refuse_control_characters() {
        assert!(Line::<1, 3>::new("abc").is_ok());
        assert!(Line::<1, 3>::new("äöü").is_ok(), "3 characters, 6 bytes");
        let long = Line::<1, 3>::new("abcd").unwrap_err().to_string();
        assert_eq!(long, "invalid value: expected 1 to 3 characters, got 4");
        assert!(Line::<1, 3>::new("").is_err());
        assert!(Line::<1, 9>::new("a\nb").is_err());
        assert!(Line::<1, 9>::new("a\u{0}b").is_err());
        assert!(Line::<1, 9>::new("a\u{85}b").is_err(), "C1 controls too");
    }

    #[test]
    fn prose_allows_line_breaks_and_tabs_only() {
        assert!(Prose::<0, 20>::new("").is_ok());
        assert!(Prose::<0, 20>::new("a\r\n\tb").is_ok());
        assert!(Prose::<0, 20>::new("a\u{7}b").is_err());
    }

    #[test]
    fn deserializing_checks_the_rule() {
        let ok: Line<1, 5> = serde_json::from_str("\"hello\"").unwrap();
        assert_eq!(ok.as_str(), "hello");
        let err = serde_json::from_str::<Line<1, 4>>("\"hello\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected 1 to 4 characters, got 5")
        );
        assert!(serde_json::from_str::<Line<1, 4>>("5").is_err());
    }

    #[test]
    fn schemas_carry_the_bounds() {
        let schema =
            serde_json::to_value(Line::<1, 64>::json_schema(&mut SchemaGenerator::default()))
                .unwrap();
        assert_eq!(schema["minLength"], 1);
        assert_eq!(schema["maxLength"], 64);
        assert_eq!(schema["type"], "string");
        let prose =
            serde_json::to_value(Prose::<0, 5>::json_schema(&mut SchemaGenerator::default()))
                .unwrap();
        assert!(prose.get("minLength").is_none());
    }
}
