//! `analytics.tracked`: something a user (or another entity) did, for analytics. Version 1 called
//! the name `event` and the subject `user_id`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::upgrade::{object, rename};
use crate::event::Event;
use crate::text::Line;

/// Most properties one analytics event may carry.
pub const MAX_PROPERTIES: usize = 50;

/// `analytics.tracked`: one tracked event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "analytics.tracked payload")]
pub struct AnalyticsTracked {
    /// What happened, such as `checkout_started`, 1 to 128 characters.
    pub name: Line<1, 128>,
    /// Who or what it happened to (a user or entity id), 1 to 128 characters.
    pub subject: Line<1, 128>,
    /// Free-form details, at most 50 keys.
    #[schemars(extend("maxProperties" = MAX_PROPERTIES))]
    pub properties: Map<String, Value>,
    /// When it happened (RFC 3339).
    #[serde(deserialize_with = "crate::time::rfc3339")]
    pub timestamp: DateTime<Utc>,
}

impl Event for AnalyticsTracked {
    const TYPE: &'static str = "analytics.tracked";
    const VERSION: u32 = 2;

    /// Version 1: `event` is now `name`, `user_id` is now `subject`.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        let mut map = object(payload)?;
        rename(&mut map, "event", "name")?;
        rename(&mut map, "user_id", "subject")?;
        Ok(Value::Object(map))
    }

    fn validate(&self) -> Result<(), String> {
        let n = self.properties.len();
        if n > MAX_PROPERTIES {
            return Err(format!(
                "properties has {n} keys, at most {MAX_PROPERTIES} are allowed"
            ));
        }
        Ok(())
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        vec![("name", self.name.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_fields_are_renamed() {
        let v1 = json!({"event": "signup", "user_id": "u-1", "properties": {"plan": "pro"},
                        "timestamp": "2026-11-26T15:00:00Z"});
        let v2 = AnalyticsTracked::upgrade_previous(v1).unwrap();
        assert_eq!(
            v2,
            json!({"name": "signup", "subject": "u-1", "properties": {"plan": "pro"},
                   "timestamp": "2026-11-26T15:00:00Z"})
        );
        let tracked: AnalyticsTracked = serde_json::from_value(v2).unwrap();
        assert_eq!(tracked.routing_keys(), vec![("name", "signup".to_owned())]);
        assert!(tracked.validate().is_ok());
        let err = AnalyticsTracked::upgrade_previous(json!({"event": "x"})).unwrap_err();
        assert_eq!(err, "missing field `user_id`");
    }

    #[test]
    fn at_most_fifty_properties() {
        let properties: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        let tracked = AnalyticsTracked {
            name: Line::new("x").unwrap(),
            subject: Line::new("u").unwrap(),
            properties,
            timestamp: Utc::now(),
        };
        assert_eq!(
            tracked.validate().unwrap_err(),
            "properties has 51 keys, at most 50 are allowed"
        );
    }
}
