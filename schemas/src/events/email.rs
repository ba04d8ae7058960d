//! `email.requested`: a service asks the mailer to send one email, rendered from a template or
//! written out. Version 1 was flat (`{"to", "template", "data"}`) and knew only templates.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::upgrade::{object, take};
use crate::codes::{Email, TemplateName};
use crate::event::Event;
use crate::text::{Line, Prose};

/// Longest subject, in characters (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Longest plain-text or HTML body, in characters.
pub const MAX_BODY_CHARS: usize = 100_000;

/// `email.requested`: send one email.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "email.requested payload")]
pub struct EmailRequested {
    /// The recipient.
    pub to: Email,
    /// Where replies go, when not to the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Email>,
    /// What to send.
    pub content: EmailContent,
}

/// What an email says: a template and its data, or a written-out message.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmailContent {
    /// Rendered by the mailer from a template.
    Template {
        /// The template's name.
        template: TemplateName,
        /// The template's variables.
        data: Map<String, Value>,
    },
    /// Written out by the producer.
    Direct {
        /// The subject line, 1 to 998 characters.
        subject: Line<1, MAX_SUBJECT_CHARS>,
        /// The plain-text body.
        text: Prose<1, MAX_BODY_CHARS>,
        /// An HTML body sent beside the text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html: Option<Prose<1, MAX_BODY_CHARS>>,
    },
}

impl EmailContent {
    /// `template` or `direct`.
    pub fn kind(&self) -> &'static str {
        match self {
            EmailContent::Template { .. } => "template",
            EmailContent::Direct { .. } => "direct",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ContentKind {
    Template,
    Direct,
}

/// Every field of every kind, so that field errors keep their path (`content.subject`), which
/// serde's internally tagged enums lose.
#[derive(Deserialize)]
struct RawContent {
    kind: ContentKind,
    template: Option<TemplateName>,
    data: Option<Map<String, Value>>,
    subject: Option<Line<1, MAX_SUBJECT_CHARS>>,
    text: Option<Prose<1, MAX_BODY_CHARS>>,
    html: Option<Prose<1, MAX_BODY_CHARS>>,
}

impl<'de> Deserialize<'de> for EmailContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawContent::deserialize(deserializer)?;
        let missing = D::Error::missing_field;
        Ok(match raw.kind {
            ContentKind::Template => EmailContent::Template {
                template: raw.template.ok_or_else(|| missing("template"))?,
                data: raw.data.ok_or_else(|| missing("data"))?,
            },
            ContentKind::Direct => EmailContent::Direct {
                subject: raw.subject.ok_or_else(|| missing("subject"))?,
                text: raw.text.ok_or_else(|| missing("text"))?,
                html: raw.html,
            },
        })
    }
}

impl Event for EmailRequested {
    const TYPE: &'static str = "email.requested";
    const VERSION: u32 = 2;

    /// Version 1: `{"to", "template", "data"}`; the template and data move into `content`.
    fn upgrade_previous(payload: Value) -> Result<Value, String> {
        let mut map = object(payload)?;
        let mut content = Map::new();
        content.insert("kind".into(), "template".into());
        content.insert("template".into(), take(&mut map, "template")?);
        content.insert("data".into(), take(&mut map, "data")?);
        map.insert("content".into(), Value::Object(content));
        Ok(Value::Object(map))
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = vec![("email_kind", self.content.kind().to_owned())];
        if let EmailContent::Template { template, .. } = &self.content {
            keys.push(("template", template.to_string()));
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_becomes_template_content() {
        let v1 = json!({"to": "ada@example.com", "template": "welcome", "data": {"name": "Ada"}});
        let v2 = EmailRequested::upgrade_previous(v1).unwrap();
        assert_eq!(
            v2,
            json!({"to": "ada@example.com",
                   "content": {"kind": "template", "template": "welcome", "data": {"name": "Ada"}}})
        );
        let email: EmailRequested = serde_json::from_value(v2).unwrap();
        assert_eq!(
            email.routing_keys(),
            vec![
                ("email_kind", "template".to_owned()),
                ("template", "welcome".to_owned())
            ]
        );
        let err = EmailRequested::upgrade_previous(json!({"to": "a@b.co"})).unwrap_err();
        assert_eq!(err, "missing field `template`");
    }

    #[test]
    fn content_kinds_need_their_fields() {
        let direct = json!({"kind": "direct", "subject": "Hi", "text": "Hello\nthere"});
        let content: EmailContent = serde_json::from_value(direct).unwrap();
        assert_eq!(content.kind(), "direct");
        let back = serde_json::to_value(&content).unwrap();
        assert_eq!(
            back,
            json!({"kind": "direct", "subject": "Hi", "text": "Hello\nthere"})
        );
        for (bad, says) in [
            (
                json!({"kind": "direct", "text": "x"}),
                "missing field `subject`",
            ),
            (
                json!({"kind": "template", "data": {}}),
                "missing field `template`",
            ),
            (json!({"kind": "sms", "text": "x"}), "unknown variant `sms`"),
            (json!({"template": "x", "data": {}}), "missing field `kind`"),
            (
                json!({"kind": "direct", "subject": "a\r\nBcc: x", "text": "x"}),
                "control character",
            ),
        ] {
            let err = serde_json::from_value::<EmailContent>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
