//! An [`OutgoingEmail`] as an RFC 5322 message: its `Message-ID` and `X-Fleet-Event-Id` name
//! the request, so the server's record (and the recipient's headers) lead back to the event.

use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use crate::email::mailer::{OutgoingEmail, SendError};

/// The `X-Fleet-Event-Id` header: the `email.requested` event an email was sent for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEventId(pub String);

impl Header for FleetEventId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Fleet-Event-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim().to_owned()))
    }

    fn display(&self) -> HeaderValue {
        // `HeaderValue::new` encodes and folds: a CR or LF in the id cannot start a new header.
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `<{event_id}@fleet>`, with any character a message id cannot hold replaced by `-`.
pub fn message_id(event_id: &str) -> String {
    let local: String = event_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() { "event" } else { local };
    format!("<{local}@fleet>")
}

/// The message for `email`, with its `Message-ID`.
///
/// # Errors
/// `Rejected` `invalid_address` when an address does not parse, `invalid_message` when lettre
/// cannot build the message; the detail names which field, never the address.
pub fn build(email: &OutgoingEmail) -> Result<(Message, String), SendError> {
    let mailbox = |field: &str, value: &str| {
        value.parse::<Mailbox>().map_err(|e| {
            SendError::rejected("invalid_address", format!("{field} is not an address: {e}"))
        })
    };
    let id = message_id(&email.event_id);
    let mut builder = Message::builder()
        .from(mailbox("from", &email.from)?)
        .to(mailbox("to", &email.to)?)
        .subject(email.subject.clone())
        .message_id(Some(id.clone()))
        .header(FleetEventId(email.event_id.clone()));
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox("reply_to", reply_to)?);
    }
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone()),
    };
    let message =
        built.map_err(|e| SendError::rejected("invalid_message", format!("cannot build: {e}")))?;
    Ok((message, id))
}

/// The server's queue id from its final reply (`250 2.0.0 Ok: queued as 4F2B81C0A2`), if it
/// names one.
pub fn queue_id<'a>(reply: impl IntoIterator<Item = &'a str>) -> Option<String> {
    const MARKER: &str = "queued as ";
    reply.into_iter().find_map(|line| {
        let at = line.to_ascii_lowercase().find(MARKER)?;
        let id: String = line[at + MARKER.len()..]
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | ')' | '>'))
            .collect();
        let id = id.trim_end_matches('.').to_owned();
        (!id.is_empty()).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(html: Option<&str>) -> OutgoingEmail {
        OutgoingEmail {
            from: "Fleet <orders@example.com>".to_owned(),
            to: "alice@example.org".to_owned(),
            reply_to: Some("help@example.com".to_owned()),
            subject: "Your order ✓".to_owned(),
            text: "Thanks.".to_owned(),
            html: html.map(str::to_owned),
            event_id: "0b6f2c1e-9d1a-4e57-a0c4-5a7d1f0e2b3c".to_owned(),
            template: None,
        }
    }

    #[test]
    fn the_message_names_its_event_twice() {
        let (message, id) = build(&email(None)).expect("builds");
        assert_eq!(id, "<0b6f2c1e-9d1a-4e57-a0c4-5a7d1f0e2b3c@fleet>");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert!(
            raw.contains("X-Fleet-Event-Id: 0b6f2c1e-9d1a-4e57-a0c4-5a7d1f0e2b3c\r\n"),
            "{raw}"
        );
        assert!(raw.contains(&format!("Message-ID: {id}\r\n")), "{raw}");
        assert!(raw.contains("Reply-To: help@example.com\r\n"), "{raw}");
        assert!(raw.contains("Content-Type: text/plain"), "{raw}");
        assert_eq!(message.envelope().to().len(), 1);
    }

    #[test]
    fn html_makes_a_multipart_alternative() {
        let (message, _) = build(&email(Some("<p>Thanks.</p>"))).expect("builds");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
    }

    #[test]
    fn a_bad_address_is_rejected_without_echoing_it() {
        let mut e = email(None);
        e.to = "alice@@example.org".to_owned();
        let err = build(&e).expect_err("bad address");
        assert_eq!(err.code, "invalid_address");
        assert!(err.detail.starts_with("to "), "{}", err.detail);
        assert!(
            !crate::email::privacy::has_full_address(&err.detail),
            "{}",
            err.detail
        );
    }

    #[test]
    fn header_injection_and_odd_ids_stay_inside_their_header() {
        assert_eq!(message_id("a b>c@d"), "<a-b-c-d@fleet>");
        assert_eq!(message_id(""), "<event@fleet>");
        let mut e = email(None);
        e.event_id = "x\r\nBcc: eve@example.net".to_owned();
        let (message, _) = build(&e).expect("builds");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn queue_ids_are_read_from_the_final_reply() {
        assert_eq!(
            queue_id(["2.0.0 Ok: queued as 4F2B81C0A2"]),
            Some("4F2B81C0A2".to_owned())
        );
        assert_eq!(queue_id(["OK"]), None);
        assert_eq!(queue_id(["Ok", "Queued As abc."]), Some("abc".to_owned()));
        assert_eq!(queue_id(["queued as "]), None);
    }
}
