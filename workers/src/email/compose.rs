//! The pure step before a send: an `email.requested` becomes an [`OutgoingEmail`], rendered from
//! its template or taken as written, and checked against what providers accept. Every failure
//! here is permanent for the message (a retry renders the same thing).

use fleet_schemas::{EmailContent, EmailRequested, Envelope};

use super::error::RenderError;
use super::mailer::OutgoingEmail;
use super::render::Templates;

/// The largest email Fleet hands a provider, in bytes of subject and bodies (SES v2 accepts
/// 40 MB with attachments; Fleet sends text, and a body this large is a producer's bug).
pub const MAX_EMAIL_BYTES: usize = 1024 * 1024;
/// The longest subject, in characters (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// Why a request cannot become an email.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The template could not render with the request's data.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The email is larger than [`MAX_EMAIL_BYTES`].
    #[error("the email is {bytes} bytes; at most {MAX_EMAIL_BYTES} are sent")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// The rendered subject is longer than [`MAX_SUBJECT_CHARS`].
    #[error("the subject is {chars} characters; at most {MAX_SUBJECT_CHARS}")]
    SubjectTooLong {
        /// Its length.
        chars: usize,
    },
}

impl ComposeError {
    /// The dead-letter reason label.
    pub fn label(&self) -> &'static str {
        match self {
            ComposeError::Render(e) => e.label(),
            ComposeError::TooLarge { .. } => "email_too_large",
            ComposeError::SubjectTooLong { .. } => "subject_invalid",
        }
    }
}

/// The email `request` asks for, from `from`.
///
/// # Errors
/// A template that is missing or cannot render the data, or an email too large to send.
pub fn compose(
    templates: &Templates,
    from: &str,
    request: &Envelope<EmailRequested>,
) -> Result<OutgoingEmail, ComposeError> {
    let payload = &request.payload;
    let (subject, text, html, template) = match &payload.content {
        EmailContent::Template { template, data } => {
            let r = templates.render(template.as_str(), data)?;
            (
                r.subject,
                r.text,
                r.html,
                Some(template.as_str().to_owned()),
            )
        }
        EmailContent::Direct {
            subject,
            text,
            html,
        } => (
            subject.as_str().to_owned(),
            text.as_str().to_owned(),
            html.as_ref().map(|h| h.as_str().to_owned()),
            None,
        ),
    };
    let chars = subject.chars().count();
    if chars > MAX_SUBJECT_CHARS {
        return Err(ComposeError::SubjectTooLong { chars });
    }
    let bytes = subject.len() + text.len() + html.as_ref().map_or(0, String::len);
    if bytes > MAX_EMAIL_BYTES {
        return Err(ComposeError::TooLarge { bytes });
    }
    Ok(OutgoingEmail {
        from: from.to_owned(),
        to: payload.to.as_str().to_owned(),
        reply_to: payload.reply_to.as_ref().map(|r| r.as_str().to_owned()),
        subject,
        text,
        html,
        event_id: request.header.id.clone(),
        template,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fleet_schemas::Event;
    use serde_json::json;

    use super::*;

    fn templates() -> Templates {
        Templates::from_files(
            "test",
            [
                ("hello/subject.txt", "Hello {{ name }}"),
                ("hello/text.txt", "Hi {{ name }}, {{ body }}"),
                ("hello/html.html", "<p>{{ name }}</p>"),
            ],
        )
    }

    fn request(content: serde_json::Value) -> Envelope<EmailRequested> {
        let payload: EmailRequested = serde_json::from_value(json!({
            "to": "ada@example.com",
            "reply_to": "help@example.com",
            "content": content,
        }))
        .unwrap();
        let mut envelope = Envelope::new(payload, "tests");
        envelope.header.id = "ev-1".to_owned();
        envelope
    }

    #[test]
    fn a_template_request_is_rendered_and_addressed() {
        let r = request(
            json!({"kind": "template", "template": "hello", "data": {"name": "<Ada>", "body": "x"}}),
        );
        let e = compose(&templates(), "Fleet <orders@example.com>", &r).unwrap();
        assert_eq!(e.subject, "Hello <Ada>");
        assert_eq!(e.text, "Hi <Ada>, x");
        assert_eq!(e.html.as_deref(), Some("<p>&lt;Ada&gt;</p>"));
        assert_eq!(
            (e.to.as_str(), e.reply_to.as_deref(), e.from.as_str()),
            (
                "ada@example.com",
                Some("help@example.com"),
                "Fleet <orders@example.com>"
            )
        );
        assert_eq!(
            (e.event_id.as_str(), e.template.as_deref()),
            ("ev-1", Some("hello"))
        );
        assert_eq!(EmailRequested::TYPE, "email.requested");
    }

    #[test]
    fn a_direct_request_is_sent_as_written() {
        let r = request(json!({"kind": "direct", "subject": "Hi", "text": "Body"}));
        let e = compose(&templates(), "orders@example.com", &r).unwrap();
        assert_eq!(
            (e.subject.as_str(), e.text.as_str(), e.html, e.template),
            ("Hi", "Body", None, None)
        );
    }

    #[test]
    fn a_missing_template_or_variable_is_a_labelled_permanent_failure() {
        let r = request(json!({"kind": "template", "template": "nope", "data": {}}));
        let e = compose(&templates(), "f@example.com", &r).unwrap_err();
        assert_eq!(e.label(), "template_missing");
        let r = request(json!({"kind": "template", "template": "hello", "data": {"name": "x"}}));
        let e = compose(&templates(), "f@example.com", &r).unwrap_err();
        assert_eq!(e.label(), "template_data_missing");
    }

    #[test]
    fn an_oversized_email_is_refused_before_any_send() {
        let body = "x".repeat(MAX_EMAIL_BYTES);
        let r = request(
            json!({"kind": "template", "template": "hello", "data": {"name": "x", "body": body}}),
        );
        let e = compose(&templates(), "f@example.com", &r).unwrap_err();
        assert_eq!(e.label(), "email_too_large");
        let long = "y".repeat(MAX_SUBJECT_CHARS + 1);
        let r = request(
            json!({"kind": "template", "template": "hello", "data": {"name": long, "body": ""}}),
        );
        let e = compose(&templates(), "f@example.com", &r).unwrap_err();
        assert_eq!(e.label(), "subject_invalid");
    }
}
