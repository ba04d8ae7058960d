//! The SNS JSON envelope: how SNS wraps a published message for a subscription without raw
//! delivery, and how a consumer tells the two apart and unwraps it.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::error::BusError;
use crate::message::{AttributeValue, MessageAttributes};

/// A parsed SNS notification envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnsEnvelope {
    /// The SNS message id.
    pub message_id: String,
    /// The topic the message was published to.
    pub topic_arn: String,
    /// The publisher's subject, if any.
    pub subject: Option<String>,
    /// The published body.
    pub message: String,
    /// When SNS accepted the message (ISO 8601, as SNS writes it).
    pub timestamp: String,
    /// FIFO topics: the topic's sequence number.
    pub sequence_number: Option<String>,
    /// The published message attributes.
    pub attributes: MessageAttributes,
}

impl SnsEnvelope {
    /// The envelope SNS would deliver for a message published now.
    pub fn new(
        message_id: impl Into<String>,
        topic_arn: impl Into<String>,
        message: impl Into<String>,
        attributes: MessageAttributes,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            topic_arn: topic_arn.into(),
            subject: None,
            message: message.into(),
            timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            sequence_number: None,
            attributes,
        }
    }

    /// The envelope as the JSON text SNS puts in the SQS body.
    pub fn to_json(&self) -> String {
        let mut obj = Map::new();
        obj.insert("Type".into(), json!("Notification"));
        obj.insert("MessageId".into(), json!(self.message_id));
        if let Some(seq) = &self.sequence_number {
            obj.insert("SequenceNumber".into(), json!(seq));
        }
        obj.insert("TopicArn".into(), json!(self.topic_arn));
        if let Some(subject) = &self.subject {
            obj.insert("Subject".into(), json!(subject));
        }
        obj.insert("Message".into(), json!(self.message));
        obj.insert("Timestamp".into(), json!(self.timestamp));
        obj.insert("SignatureVersion".into(), json!("1"));
        obj.insert("Signature".into(), json!("EMBEDDED"));
        obj.insert(
            "SigningCertURL".into(),
            json!("https://sns.embedded.invalid/SimpleNotificationService.pem"),
        );
        obj.insert(
            "UnsubscribeURL".into(),
            json!("https://sns.embedded.invalid/?Action=Unsubscribe"),
        );
        if !self.attributes.is_empty() {
            let attrs: Map<String, Value> = self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), attribute_to_json(v)))
                .collect();
            obj.insert("MessageAttributes".into(), Value::Object(attrs));
        }
        Value::Object(obj).to_string()
    }

    /// Tells an SNS-enveloped body from a raw one: `Ok(None)` for a raw body, the parsed envelope
    /// for an SNS notification.
    ///
    /// # Errors
    /// `Envelope` when the body claims to be an SNS notification (`"Type": "Notification"` with a
    /// `TopicArn`) but is malformed.
    pub fn detect(body: &str) -> Result<Option<SnsEnvelope>, BusError> {
        // Cheap test first: most raw bodies never get parsed twice.
        if !body.contains("\"TopicArn\"") {
            return Ok(None);
        }
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(body) else {
            return Ok(None);
        };
        if obj.get("Type").and_then(Value::as_str) != Some("Notification")
            || !obj.contains_key("TopicArn")
        {
            return Ok(None);
        }
        parse_envelope(&obj).map(Some)
    }
}

fn bad(reason: impl Into<String>) -> BusError {
    BusError::Envelope(reason.into())
}

fn parse_envelope(obj: &Map<String, Value>) -> Result<SnsEnvelope, BusError> {
    let text = |key: &str| -> Result<String, BusError> {
        obj.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("field {key} is missing or not a string")))
    };
    let optional = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
    let attributes = match obj.get("MessageAttributes") {
        None | Some(Value::Null) => MessageAttributes::new(),
        Some(Value::Object(attrs)) => attrs
            .iter()
            .map(|(k, v)| attribute_from_json(k, v).map(|a| (k.clone(), a)))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("MessageAttributes is not an object")),
    };
    Ok(SnsEnvelope {
        message_id: text("MessageId")?,
        topic_arn: text("TopicArn")?,
        subject: optional("Subject"),
        message: text("Message")?,
        timestamp: optional("Timestamp").unwrap_or_default(),
        sequence_number: optional("SequenceNumber"),
        attributes,
    })
}

fn attribute_to_json(v: &AttributeValue) -> Value {
    let value = match (v.as_str(), v.as_bytes()) {
        (Some(s), _) => s.to_owned(),
        (None, Some(b)) => BASE64.encode(b),
        (None, None) => String::new(),
    };
    json!({ "Type": v.data_type(), "Value": value })
}

fn attribute_from_json(name: &str, v: &Value) -> Result<AttributeValue, BusError> {
    let field = |key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("attribute {name} has no string {key}")))
    };
    let data_type = field("Type")?;
    let value = field("Value")?;
    if data_type.starts_with("Binary") {
        let bytes = BASE64
            .decode(value)
            .map_err(|e| bad(format!("attribute {name} is not base64: {e}")))?;
        return Ok(AttributeValue::binary(bytes));
    }
    Ok(AttributeValue::text(data_type, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnsEnvelope {
        let mut attrs = MessageAttributes::new();
        attrs.insert("type".into(), AttributeValue::string("order.placed"));
        attrs.insert("amount".into(), AttributeValue::number(12));
        attrs.insert("blob".into(), AttributeValue::binary(vec![0, 1, 2, 255]));
        let mut env = SnsEnvelope::new("m-1", "arn:aws:sns:us-east-1:0:events", "{\"a\":1}", attrs);
        env.subject = Some("hello".into());
        env
    }

    #[test]
    fn round_trips_through_json() {
        let env = sample();
        let parsed = SnsEnvelope::detect(&env.to_json())
            .expect("valid")
            .expect("enveloped");
        assert_eq!(parsed, env);
    }

    #[test]
    fn raw_bodies_are_not_envelopes() {
        for body in [
            "hello",
            "{\"a\":1}",
            "[1,2]",
            "{\"TopicArn\":\"x\",\"Type\":\"Other\"}",
            "{\"TopicArn\": 1",
        ] {
            assert_eq!(SnsEnvelope::detect(body).expect("raw"), None, "{body}");
        }
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        let cases = [
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m"}"#,
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m","Message":5}"#,
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m","Message":"x","MessageAttributes":[]}"#,
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m","Message":"x","MessageAttributes":{"a":{"Type":"Binary","Value":"***"}}}"#,
            r#"{"Type":"Notification","TopicArn":"t","MessageId":"m","Message":"x","MessageAttributes":{"a":{"Value":"1"}}}"#,
        ];
        for body in cases {
            assert!(
                matches!(SnsEnvelope::detect(body), Err(BusError::Envelope(_))),
                "{body}"
            );
        }
    }
}
