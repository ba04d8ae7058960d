//! The email events.
//!
//! - `email.requested`: a service asks the mailer to send one email, rendered from a template or
//!   written out. Version 1 was flat (`{"to", "template", "data"}`) and knew only templates.
//! - `email.sent`: the email worker reports that a provider accepted a requested email, for
//!   analytics and anyone else who wants to know; it never carries the recipient's address.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::upgrade::{object, take};
use crate::codes::{Email, TemplateName};
use crate::envelope::{Envelope, MAX_ID_CHARS};
use crate::error::SchemaError;
use crate::event::Event;
use crate::text::{Line, Prose};

/// Longest subject, in characters (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Longest plain-text or HTML body, in characters.
pub const MAX_BODY_CHARS: usize = 100_000;
/// Longest provider message id, in characters (SES's are about 60, SMTP queue ids and the
/// `Message-ID` Fleet sets are shorter).
pub const MAX_PROVIDER_ID_CHARS: usize = 256;

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

/// `email.sent`: a provider accepted one requested email. It never carries the recipient's
/// address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "email.sent payload")]
pub struct EmailSent {
    /// The id of the `email.requested` message this email fulfils, 1 to 128 characters.
    pub request_id: Line<1, MAX_ID_CHARS>,
    /// The template it was rendered from; absent for a written-out email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateName>,
    /// The kind of mailer that sent it.
    pub mailer: MailerKind,
    /// The provider's id for it (SES's `MessageId`, the SMTP server's queue id), 1 to 256
    /// characters.
    pub provider_message_id: Line<1, MAX_PROVIDER_ID_CHARS>,
}

impl EmailSent {
    /// The event reporting that `request` was sent by a `mailer`, which gave it the id
    /// `provider_message_id`: the request's id, and its template when it has one.
    ///
    /// # Errors
    /// `InvalidValue` when the provider's id is empty, longer than [`MAX_PROVIDER_ID_CHARS`] or
    /// holds a control character, or the request's id is not a valid message id (a decoded
    /// request's always is).
    pub fn fulfilling(
        request: &Envelope<EmailRequested>,
        mailer: MailerKind,
        provider_message_id: impl Into<String>,
    ) -> Result<Self, SchemaError> {
        let template = match &request.payload.content {
            EmailContent::Template { template, .. } => Some(template.clone()),
            EmailContent::Direct { .. } => None,
        };
        Ok(Self {
            request_id: Line::new(request.header.id.as_str())?,
            template,
            mailer,
            provider_message_id: Line::new(provider_message_id)?,
        })
    }
}

/// The kind of mailer that sent an email.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailerKind {
    /// Amazon SES (API v2).
    Ses,
    /// An SMTP server.
    Smtp,
    /// The in-memory mailer of `fleet demo` and the tests.
    Memory,
}

impl MailerKind {
    /// Every kind, in declaration order.
    pub const ALL: [MailerKind; 3] = [MailerKind::Ses, MailerKind::Smtp, MailerKind::Memory];

    /// The wire name: `ses`, `smtp` or `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailerKind::Ses => "ses",
            MailerKind::Smtp => "smtp",
            MailerKind::Memory => "memory",
        }
    }
}

impl Event for EmailSent {
    const TYPE: &'static str = "email.sent";
    const VERSION: u32 = 1;

    /// There is no version before 1; decoders never call this for a version-1 type.
    fn upgrade_previous(_payload: Value) -> Result<Value, String> {
        Err(format!("{} has no version before 1", Self::TYPE))
    }

    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = vec![("mailer", self.mailer.as_str().to_owned())];
        if let Some(template) = &self.template {
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

    fn request(content: Value) -> Envelope<EmailRequested> {
        let payload = serde_json::from_value(json!({"to": "ada@example.com", "content": content}));
        let mut request = Envelope::new(payload.unwrap(), "checkout");
        request.header.id = "req-1".into();
        request
    }

    #[test]
    fn a_sent_email_names_its_request_and_template_and_routes_by_them() {
        let templated = request(json!({"kind": "template", "template": "welcome", "data": {}}));
        let sent = EmailSent::fulfilling(&templated, MailerKind::Ses, "0100-abc").unwrap();
        assert_eq!(
            serde_json::to_value(&sent).unwrap(),
            json!({"request_id": "req-1", "template": "welcome", "mailer": "ses",
                   "provider_message_id": "0100-abc"})
        );
        assert_eq!(
            sent.routing_keys(),
            vec![
                ("mailer", "ses".to_owned()),
                ("template", "welcome".to_owned())
            ]
        );
        let direct = request(json!({"kind": "direct", "subject": "Hi", "text": "Hello"}));
        let sent = EmailSent::fulfilling(&direct, MailerKind::Smtp, "4ABC123").unwrap();
        assert_eq!(sent.template, None);
        assert_eq!(sent.routing_keys(), vec![("mailer", "smtp".to_owned())]);
        let body = serde_json::to_string(&sent).unwrap();
        assert!(!body.contains("ada@example.com"), "{body}");
        assert!(!body.contains("template"), "absent, not null: {body}");
    }

    #[test]
    fn a_provider_id_must_be_one_bounded_line() {
        let r = request(json!({"kind": "template", "template": "welcome", "data": {}}));
        for bad in [
            String::new(),
            "x".repeat(MAX_PROVIDER_ID_CHARS + 1),
            "a\r\nb".into(),
        ] {
            assert!(
                EmailSent::fulfilling(&r, MailerKind::Memory, bad.clone()).is_err(),
                "{bad:?}"
            );
        }
        let longest = "x".repeat(MAX_PROVIDER_ID_CHARS);
        assert!(EmailSent::fulfilling(&r, MailerKind::Memory, longest).is_ok());
    }

    #[test]
    fn mailer_kinds_are_closed_and_email_sent_has_no_earlier_version() {
        let names: Vec<&str> = MailerKind::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["ses", "smtp", "memory"]);
        for kind in MailerKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        let err = serde_json::from_value::<MailerKind>(json!("sendgrid")).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `sendgrid`"),
            "{err}"
        );
        assert_eq!(crate::supported_versions::<EmailSent>(), vec![1]);
        let err = EmailSent::upgrade_previous(json!({})).unwrap_err();
        assert_eq!(err, "email.sent has no version before 1");
    }
}
