//! Amazon SNS subscription filter policies: parsing, validation and matching.
//!
//! Follows the SNS developer guide: keys are AND'ed, the conditions in a key's array are
//! OR'ed, `"$or"` takes two or more sub-policies, and body-scope policies nest into the
//! JSON body. Values are typed: strings only match strings, numbers only match numbers
//! (`Number` attributes, JSON numbers, numeric `String.Array` elements), compared with
//! five decimal places. `Binary` attributes are ignored, as if absent.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::message::{AttributeValue, MessageAttributes};

/// Most top-level keys a policy (or any one `$or` alternative of it) may name.
pub const MAX_KEYS: usize = 5;
/// Most value combinations a policy may expand to.
pub const MAX_COMBINATIONS: u64 = 150;
/// Largest policy document SNS accepts, in bytes.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// Largest magnitude of a number usable in numeric matching.
pub const MAX_NUMBER: f64 = 1e9;

/// Numbers are compared as fixed point with five decimal places.
const SCALE: f64 = 1e5;
/// Operator names that stop `"$or"` from being read as an OR (it is then a plain key).
const RESERVED: &str = "anything-but cidr equals-ignore-case exists numeric prefix suffix wildcard";

/// Where a filter policy looks: SNS `FilterPolicyScope`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FilterScope {
    /// Match message attributes (the SNS default).
    #[default]
    MessageAttributes,
    /// Match properties of the message body, parsed as a JSON object.
    MessageBody,
}

/// Why a filter policy was rejected; `path` is the dotted key path of the offending key.
// The fields are what each variant's message names.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum FilterPolicyError {
    /// The document is not valid JSON.
    #[error("filter policy is not valid json: {0}")]
    InvalidJson(String),
    /// The document is larger than SNS accepts.
    #[error("filter policy is {size} bytes, at most {MAX_POLICY_BYTES}")]
    TooLarge { size: usize },
    /// The policy document is not a JSON object.
    #[error("filter policy must be a json object")]
    NotAnObject,
    /// A nested object or `$or` alternative has no keys.
    #[error("`{path}`: object must not be empty")]
    EmptyObject { path: String },
    /// The policy names too many top-level keys.
    #[error("filter policy has {count} top-level keys, at most {MAX_KEYS}")]
    TooManyKeys { count: usize },
    /// The policy expands to too many value combinations.
    #[error("filter policy has {combinations} value combinations, at most {MAX_COMBINATIONS}")]
    TooComplex { combinations: u64 },
    /// A nested object was used with the `MessageAttributes` scope.
    #[error("`{path}`: nested policies need the MessageBody scope")]
    NestedInAttributeScope { path: String },
    /// A key's value is not an array of conditions (or, in body scope, an object).
    #[error("`{path}`: expected an array of conditions")]
    ExpectedArray { path: String },
    /// A key's condition array is empty.
    #[error("`{path}`: condition array must not be empty")]
    EmptyArray { path: String },
    /// A condition is neither a scalar nor an operator object.
    #[error(
        "`{path}`: match value must be a string, number, true, false, null or an operator object"
    )]
    InvalidMatchValue { path: String },
    /// An operator object does not have exactly one key.
    #[error("`{path}`: operator object must have exactly one key, found {count}")]
    OperatorArity { path: String, count: usize },
    /// An operator name is not one SNS supports (or this module implements).
    #[error("`{path}`: unknown operator `{operator}`")]
    UnknownOperator { path: String, operator: String },
    /// An operator was given a value of the wrong shape.
    #[error("`{path}`: `{operator}` expects {expected}")]
    InvalidOperand {
        path: String,
        operator: String,
        expected: &'static str,
    },
    /// A `numeric` condition is malformed.
    #[error("`{path}`: invalid numeric condition: {reason}")]
    InvalidNumeric { path: String, reason: &'static str },
    /// A policy number lies outside -1e9..=1e9.
    #[error("`{path}`: number {value} is outside the range -1e9 to 1e9")]
    NumberOutOfRange { path: String, value: f64 },
}

type Result<T> = std::result::Result<T, FilterPolicyError>;

/// A parsed, validated SNS filter policy.
#[derive(Clone, Debug)]
pub struct FilterPolicy {
    scope: FilterScope,
    rules: Rules,
}

impl FilterPolicy {
    /// Parses and validates a policy JSON document for the given scope.
    pub fn parse(json: &str, scope: FilterScope) -> Result<FilterPolicy> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(FilterPolicyError::TooLarge { size: json.len() });
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|e| FilterPolicyError::InvalidJson(e.to_string()))?;
        let Value::Object(root) = &value else {
            return Err(FilterPolicyError::NotAnObject);
        };
        let (rules, combinations, keys) = parse_object(root, "", 1, scope)?;
        if keys > MAX_KEYS {
            return Err(FilterPolicyError::TooManyKeys { count: keys });
        }
        if combinations > MAX_COMBINATIONS {
            return Err(FilterPolicyError::TooComplex { combinations });
        }
        Ok(FilterPolicy { scope, rules })
    }

    /// The scope this policy was parsed for.
    pub fn scope(&self) -> FilterScope {
        self.scope
    }

    /// Whether the policy is `{}`, which SNS treats as no filter (everything matches).
    pub fn is_empty(&self) -> bool {
        self.rules.leaves.is_empty() && self.rules.any_of.is_empty()
    }

    /// Whether a message with these attributes and this body is delivered. Uses the attributes for
    /// MessageAttributes scope and the body (parsed as JSON; a non-JSON body never matches a body policy) for MessageBody scope.
    pub fn matches(&self, attributes: &MessageAttributes, body: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let mut fields = Fields::new();
        match self.scope {
            FilterScope::MessageAttributes => {
                for (name, attr) in attributes {
                    if let Some(field) = attribute_field(attr) {
                        fields.insert(name.clone(), field);
                    }
                }
            }
            FilterScope::MessageBody => match serde_json::from_str::<Value>(body) {
                Ok(value @ Value::Object(_)) => flatten_body(&value, String::new(), &mut fields),
                _ => return false,
            },
        }
        self.rules.matches(&fields)
    }
}

/// A value: policy literals (numbers always `Some`) and message values alike.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Str(String),
    /// Five-decimal fixed point; `None` for message numbers outside -1e9..=1e9.
    Num(Option<i64>),
    Bool(bool),
    Null,
}

/// Which orderings (less, equal, greater) of value against bound an operator such as `<=` accepts.
type Accepts = [bool; 3];
const LESS: Accepts = [true, false, false];
const LESS_EQ: Accepts = [true, true, false];
const EQUAL: Accepts = [false, true, false];
const GREATER_EQ: Accepts = [false, true, true];
const GREATER: Accepts = [false, false, true];

/// One entry of a key's condition array.
#[derive(Clone, Debug)]
enum Condition {
    Prefix(String),
    Suffix(String),
    /// Stored lowercased.
    EqualsIgnoreCase(String),
    /// An exact value, or the values of an `anything-but` list.
    OneOf(Vec<Val>),
    /// `anything-but`: wraps `OneOf`, `Prefix` or `Suffix`.
    Not(Box<Condition>),
    Numeric(Vec<(Accepts, i64)>),
    Exists(bool),
}

/// Every leaf (key path and its conditions) must match, and so must one alternative of each `$or`.
#[derive(Clone, Debug, Default)]
struct Rules {
    leaves: Vec<(String, Vec<Condition>)>,
    any_of: Vec<Vec<Rules>>,
}

/// The values found for one key, and whether they came from a `String.Array` attribute.
#[derive(Clone, Debug, Default)]
struct Field(Vec<Val>, bool);

type Fields = HashMap<String, Field>;

/// Parses a policy object whose keys sit at `depth` (1 = top level) under `path`.
/// Returns its rules, its value combinations and its top-level key count.
fn parse_object(
    obj: &Map<String, Value>,
    path: &str,
    depth: u64,
    scope: FilterScope,
) -> Result<(Rules, u64, usize)> {
    let (mut rules, mut combinations, mut keys) = (Rules::default(), 1u64, 0);
    for (key, value) in obj {
        let here = join(path, key);
        let factor = match (or_alternatives(key, value), value) {
            (Some(alternatives), _) => {
                let (mut group, mut sum, mut widest) = (Vec::new(), 0u64, 0);
                for alt in alternatives {
                    if alt.is_empty() {
                        return Err(FilterPolicyError::EmptyObject { path: here });
                    }
                    let (alt_rules, alt_combinations, alt_keys) =
                        parse_object(alt, path, depth, scope)?;
                    group.push(alt_rules);
                    sum = sum.saturating_add(alt_combinations);
                    widest = widest.max(alt_keys);
                }
                rules.any_of.push(group);
                keys += widest;
                sum
            }
            (None, Value::Array(items)) => {
                if items.is_empty() {
                    return Err(FilterPolicyError::EmptyArray { path: here });
                }
                let conditions = items.iter().map(|item| parse_condition(item, &here));
                rules
                    .leaves
                    .push((here.clone(), conditions.collect::<Result<_>>()?));
                keys += 1;
                (items.len() as u64).saturating_mul(depth)
            }
            (None, Value::Object(inner)) => {
                if scope == FilterScope::MessageAttributes {
                    return Err(FilterPolicyError::NestedInAttributeScope { path: here });
                }
                if inner.is_empty() {
                    return Err(FilterPolicyError::EmptyObject { path: here });
                }
                let (nested, nested_combinations, _) =
                    parse_object(inner, &here, depth + 1, scope)?;
                rules.leaves.extend(nested.leaves);
                rules.any_of.extend(nested.any_of);
                keys += 1;
                nested_combinations
            }
            (None, _) => return Err(FilterPolicyError::ExpectedArray { path: here }),
        };
        combinations = combinations.saturating_mul(factor);
    }
    Ok((rules, combinations, keys))
}

/// The alternatives when `"$or"` is a real OR: an array of two or more objects, none
/// using an operator name as a key. Otherwise SNS reads `"$or"` as an ordinary key.
fn or_alternatives<'v>(key: &str, value: &'v Value) -> Option<Vec<&'v Map<String, Value>>> {
    if key != "$or" {
        return None;
    }
    let items = value.as_array()?;
    let objects: Vec<_> = items.iter().map(Value::as_object).collect::<Option<_>>()?;
    let reserved = |k: &String| RESERVED.split(' ').any(|op| op == k);
    let plain = objects.iter().all(|o| !o.keys().any(reserved));
    (objects.len() >= 2 && plain).then_some(objects)
}

fn parse_condition(item: &Value, path: &str) -> Result<Condition> {
    match item {
        Value::Object(obj) => match obj.iter().next() {
            Some((operator, operand)) if obj.len() == 1 => parse_operator(operator, operand, path),
            _ => Err(FilterPolicyError::OperatorArity {
                path: path.into(),
                count: obj.len(),
            }),
        },
        other => policy_value(other, path).map(|v| Condition::OneOf(vec![v])),
    }
}

fn parse_operator(operator: &str, operand: &Value, path: &str) -> Result<Condition> {
    let invalid = |expected| FilterPolicyError::InvalidOperand {
        path: path.into(),
        operator: operator.into(),
        expected,
    };
    let text = || {
        let text = operand.as_str().map(str::to_string);
        text.ok_or_else(|| invalid("a string"))
    };
    match operator {
        "prefix" => text().map(Condition::Prefix),
        "suffix" => text().map(Condition::Suffix),
        "equals-ignore-case" => text().map(|s| Condition::EqualsIgnoreCase(s.to_lowercase())),
        "exists" => operand
            .as_bool()
            .map(Condition::Exists)
            .ok_or_else(|| invalid("true or false")),
        "numeric" => parse_numeric(operand, path),
        "anything-but" => {
            let members = match operand {
                Value::Object(o)
                    if o.len() == 1 && (o.contains_key("prefix") || o.contains_key("suffix")) =>
                {
                    return Ok(Condition::Not(Box::new(parse_condition(operand, path)?)));
                }
                Value::Array(items) if !items.is_empty() => items.as_slice(),
                single => std::slice::from_ref(single),
            };
            let member = |v: &Value| match v {
                Value::String(_) | Value::Number(_) => policy_value(v, path),
                _ => Err(invalid("strings or numbers, or a prefix or suffix object")),
            };
            let values = members.iter().map(member).collect::<Result<_>>()?;
            Ok(Condition::Not(Box::new(Condition::OneOf(values))))
        }
        _ => Err(FilterPolicyError::UnknownOperator {
            path: path.into(),
            operator: operator.into(),
        }),
    }
}

/// Parses `[op, n]` or a range `[">"|">=", low, "<"|"<=", high]` with `low < high`.
fn parse_numeric(operand: &Value, path: &str) -> Result<Condition> {
    let invalid = |reason| FilterPolicyError::InvalidNumeric {
        path: path.into(),
        reason,
    };
    let items = operand
        .as_array()
        .ok_or_else(|| invalid("expected an array like [\">\", 0]"))?;
    let mut comparisons = Vec::new();
    for pair in items.chunks(2) {
        let accepts = match pair[0].as_str() {
            Some("<") => LESS,
            Some("<=") => LESS_EQ,
            Some("=") => EQUAL,
            Some(">=") => GREATER_EQ,
            Some(">") => GREATER,
            _ => return Err(invalid("operators must be one of =, <, <=, >, >=")),
        };
        let bound = pair.get(1).filter(|b| b.is_number());
        let bound = bound.ok_or_else(|| invalid("every operator needs a number after it"))?;
        if let Val::Num(Some(n)) = policy_value(bound, path)? {
            comparisons.push((accepts, n));
        }
    }
    let lower = |a: &Accepts| a[2] && !a[0];
    let upper = |a: &Accepts| a[0] && !a[2];
    match comparisons.as_slice() {
        [] => Err(invalid("must not be empty")),
        [_] => Ok(Condition::Numeric(comparisons)),
        [(lo, low), (up, high)] if lower(lo) && upper(up) && low < high => {
            Ok(Condition::Numeric(comparisons))
        }
        [(lo, _), (up, _)] if lower(lo) && upper(up) => {
            Err(invalid("range bottom must be below its top"))
        }
        _ => Err(invalid(
            "a range is a lower bound (> or >=) then an upper bound (< or <=)",
        )),
    }
}

/// Converts a policy scalar, rejecting numbers outside -1e9..=1e9.
fn policy_value(value: &Value, path: &str) -> Result<Val> {
    match to_val(value) {
        Some(Val::Num(None)) => Err(FilterPolicyError::NumberOutOfRange {
            path: path.into(),
            value: value.as_f64().unwrap_or(f64::INFINITY),
        }),
        Some(v) => Ok(v),
        None => Err(FilterPolicyError::InvalidMatchValue { path: path.into() }),
    }
}

/// Converts a JSON scalar (arrays and objects give `None`).
fn to_val(value: &Value) -> Option<Val> {
    match value {
        Value::String(s) => Some(Val::Str(s.clone())),
        Value::Number(n) => Some(Val::Num(n.as_f64().and_then(fixed))),
        Value::Bool(b) => Some(Val::Bool(*b)),
        Value::Null => Some(Val::Null),
        _ => None,
    }
}

/// Five-decimal fixed point, if finite and within -1e9..=1e9.
fn fixed(n: f64) -> Option<i64> {
    (n.is_finite() && n.abs() <= MAX_NUMBER).then(|| (n * SCALE).round() as i64)
}

impl Condition {
    /// Whether one message value satisfies this (non-`exists`) condition.
    fn accepts(&self, value: &Val) -> bool {
        let text = match value {
            Val::Str(s) => Some(s.as_str()),
            _ => None,
        };
        match self {
            Condition::Prefix(p) => text.is_some_and(|s| s.starts_with(p.as_str())),
            Condition::Suffix(p) => text.is_some_and(|s| s.ends_with(p.as_str())),
            Condition::EqualsIgnoreCase(p) => text.is_some_and(|s| s.to_lowercase() == *p),
            Condition::OneOf(list) => list.contains(value),
            Condition::Not(inner) => {
                !inner.accepts(value) && (text.is_some() || matches!(**inner, Condition::OneOf(_)))
            }
            Condition::Numeric(cmps) => match value {
                Val::Num(Some(n)) => cmps
                    .iter()
                    .all(|(ok, bound)| ok[(n.cmp(bound) as i8 + 1) as usize]),
                _ => false,
            },
            Condition::Exists(_) => false,
        }
    }

    /// Whether a key's field satisfies this condition; a missing field only satisfies
    /// `{"exists": false}`, and anything-but on a `String.Array` needs every element to pass.
    fn matches_field(&self, field: Option<&Field>) -> bool {
        match (self, field) {
            (Condition::Exists(want), _) => field.is_some() == *want,
            (_, None) => false,
            (Condition::Not(_), Some(Field(values, true))) => {
                !values.is_empty() && values.iter().all(|v| self.accepts(v))
            }
            (_, Some(Field(values, _))) => values.iter().any(|v| self.accepts(v)),
        }
    }
}

impl Rules {
    fn matches(&self, fields: &Fields) -> bool {
        let leaf = |(path, conditions): &(String, Vec<Condition>)| {
            conditions.iter().any(|c| c.matches_field(fields.get(path)))
        };
        let group = |alts: &Vec<Rules>| alts.iter().any(|rules| rules.matches(fields));
        self.leaves.iter().all(leaf) && self.any_of.iter().all(group)
    }
}

/// The matchable view of an attribute; `Binary` attributes are ignored (treated as absent).
fn attribute_field(attr: &AttributeValue) -> Option<Field> {
    let (data_type, text) = (attr.data_type(), attr.as_str()?);
    if data_type.starts_with("Binary") {
        return None;
    }
    let value = if data_type == "String.Array" {
        let items = match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        return Some(Field(items.iter().filter_map(to_val).collect(), true));
    } else if data_type.starts_with("Number") {
        Val::Num(text.trim().parse::<f64>().ok().and_then(fixed))
    } else {
        Val::Str(text.to_string())
    };
    Some(Field(vec![value], false))
}

/// Collects every scalar leaf of the body under its dotted key path; arrays add each element.
fn flatten_body(value: &Value, path: String, out: &mut Fields) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                flatten_body(child, join(&path, key), out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| flatten_body(item, path.clone(), out)),
        leaf => out.entry(path).or_default().0.extend(to_val(leaf)),
    }
}

/// Appends `key` to a dotted path.
fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    }
}

#[cfg(test)]
mod tests;
