//! The message Fleet sends to a dead-letter queue: the original body and attributes, plus the
//! reason as message attributes, so an operator sees why without digging through logs.

use crate::limits::{MAX_MESSAGE_ATTRIBUTES, MAX_SQS_MESSAGE_BYTES};
use crate::message::{AttributeValue, Message, MessageAttributes, OutgoingMessage};

/// Reason attribute: the error kind (`invalid_json`, `panic`, `timeout`, ...).
pub const ATTR_ERROR_KIND: &str = "fleet.error.kind";
/// Reason attribute: the error message.
pub const ATTR_ERROR_MESSAGE: &str = "fleet.error.message";
/// Reason attribute: the attempt that failed last (Number).
pub const ATTR_ATTEMPT: &str = "fleet.attempt";
/// Reason attribute: the handler that gave up.
pub const ATTR_HANDLER: &str = "fleet.handler";
/// Reason attribute: the queue the message was taken from.
pub const ATTR_SOURCE_QUEUE: &str = "fleet.source-queue";
/// When the separate attributes do not fit beside the message's own, one JSON attribute holds
/// the whole reason.
pub const ATTR_REASON_JSON: &str = "fleet.dead-letter";

/// A message's own attributes: all but the `fleet.` reason attributes of an earlier
/// dead-lettering (a redriven message may still carry them).
pub fn own_attributes(m: &Message) -> MessageAttributes {
    m.attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("fleet."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Longest error message kept in the reason.
const MAX_REASON_CHARS: usize = 1024;

/// Why a message is dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterReason {
    /// The error kind label.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// The attempt that failed last.
    pub attempt: u32,
    /// The handler's name.
    pub handler: String,
    /// The source queue.
    pub queue: String,
}

impl DeadLetterReason {
    fn attributes(&self) -> [(&'static str, AttributeValue); 5] {
        [
            (ATTR_ERROR_KIND, AttributeValue::string(&self.kind)),
            (
                ATTR_ERROR_MESSAGE,
                AttributeValue::string(truncate(&self.message)),
            ),
            (ATTR_ATTEMPT, AttributeValue::number(self.attempt)),
            (ATTR_HANDLER, AttributeValue::string(&self.handler)),
            (ATTR_SOURCE_QUEUE, AttributeValue::string(&self.queue)),
        ]
    }

    fn as_json(&self) -> String {
        serde_json::json!({
            "kind": self.kind,
            "message": truncate(&self.message),
            "attempt": self.attempt,
            "handler": self.handler,
            "queue": self.queue,
        })
        .to_string()
    }

    /// Reads a reason back from a dead-lettered message's attributes.
    pub fn from_message(m: &Message) -> Option<Self> {
        let text = |k: &str| {
            m.attributes
                .get(k)
                .and_then(AttributeValue::as_str)
                .map(str::to_owned)
        };
        if let Some(kind) = text(ATTR_ERROR_KIND) {
            return Some(Self {
                kind,
                message: text(ATTR_ERROR_MESSAGE).unwrap_or_default(),
                attempt: text(ATTR_ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
                handler: text(ATTR_HANDLER).unwrap_or_default(),
                queue: text(ATTR_SOURCE_QUEUE).unwrap_or_default(),
            });
        }
        let v: serde_json::Value = serde_json::from_str(&text(ATTR_REASON_JSON)?).ok()?;
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(Self {
            kind: s("kind"),
            message: s("message"),
            attempt: v
                .get("attempt")
                .and_then(serde_json::Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0),
            handler: s("handler"),
            queue: s("queue"),
        })
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_REASON_CHARS {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(MAX_REASON_CHARS).collect();
    t.push('…');
    t
}

/// What to send to the dead-letter queue, and whether the reason had to be left out (only when
/// the message already uses all 10 attributes or the size limit).
pub fn dead_letter_message(
    m: &Message,
    reason: &DeadLetterReason,
    fifo: bool,
) -> (OutgoingMessage, bool) {
    // A redriven message may still carry the reason of an earlier dead-lettering: drop it.
    let own = own_attributes(m);
    let mut out = OutgoingMessage {
        body: m.body.clone(),
        attributes: own,
        ..OutgoingMessage::default()
    };
    if fifo {
        out.group_id = Some(
            m.system
                .message_group_id
                .clone()
                .unwrap_or_else(|| "fleet-dead-letter".to_owned()),
        );
        out.deduplication_id = Some(format!("dl-{}", m.id));
    }
    let free = MAX_MESSAGE_ATTRIBUTES.saturating_sub(out.attributes.len());
    let attrs = reason.attributes();
    let mut with_reason = out.clone();
    if free >= attrs.len() {
        with_reason
            .attributes
            .extend(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    } else if free >= 1 {
        with_reason.attributes.insert(
            ATTR_REASON_JSON.to_owned(),
            AttributeValue::string(reason.as_json()),
        );
    } else {
        return (out, true);
    }
    if with_reason.size() > MAX_SQS_MESSAGE_BYTES {
        return (out, true);
    }
    (with_reason, false)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::message::{Receipt, SystemAttributes};

    fn message(attrs: usize, body: &str) -> Message {
        Message {
            id: "m-1".into(),
            body: body.into(),
            attributes: (0..attrs)
                .map(|i| (format!("a{i}"), AttributeValue::string("v")))
                .collect(),
            system: SystemAttributes {
                receive_count: 3,
                sent_at: SystemTime::now(),
                first_received_at: None,
                message_group_id: Some("g".into()),
                deduplication_id: None,
                sequence_number: None,
            },
            receipt: Receipt::new("r"),
        }
    }

    fn reason() -> DeadLetterReason {
        DeadLetterReason {
            kind: "invalid_json".into(),
            message: "x".repeat(5000),
            attempt: 3,
            handler: "email".into(),
            queue: "q".into(),
        }
    }

    #[test]
    fn separate_attributes_when_they_fit() {
        let (out, dropped) = dead_letter_message(&message(2, "{}"), &reason(), false);
        assert!(!dropped);
        assert_eq!(out.attributes.len(), 7);
        let m = Message {
            attributes: out.attributes,
            ..message(0, "")
        };
        let back = DeadLetterReason::from_message(&m).expect("reason");
        assert_eq!(back.kind, "invalid_json");
        assert_eq!(back.attempt, 3);
        assert_eq!(
            back.message.chars().count(),
            MAX_REASON_CHARS + 1,
            "truncated with an ellipsis"
        );
        assert_eq!(out.group_id, None);
    }

    #[test]
    fn one_json_attribute_when_space_is_short() {
        let (out, dropped) = dead_letter_message(&message(8, "{}"), &reason(), true);
        assert!(!dropped);
        assert_eq!(out.attributes.len(), 9);
        assert_eq!(out.group_id.as_deref(), Some("g"));
        assert_eq!(out.deduplication_id.as_deref(), Some("dl-m-1"));
        let m = Message {
            attributes: out.attributes,
            ..message(0, "")
        };
        assert_eq!(
            DeadLetterReason::from_message(&m).expect("reason").handler,
            "email"
        );
    }

    #[test]
    fn reason_left_out_only_when_nothing_fits() {
        let (out, dropped) = dead_letter_message(&message(10, "{}"), &reason(), false);
        assert!(dropped);
        assert_eq!(
            out.attributes.len(),
            10,
            "the message's own attributes are kept"
        );
        let huge = "x".repeat(MAX_SQS_MESSAGE_BYTES - 10);
        let (out, dropped) = dead_letter_message(&message(0, &huge), &reason(), false);
        assert!(dropped);
        assert_eq!(out.body.len(), huge.len());
    }

    #[test]
    fn an_earlier_reason_is_replaced_not_kept() {
        let mut m = message(3, "{}");
        let old = DeadLetterReason {
            kind: "first_failure".into(),
            ..reason()
        };
        let (first, _) = dead_letter_message(&m, &old, false);
        m.attributes = first.attributes;
        let (second, dropped) = dead_letter_message(&m, &reason(), false);
        assert!(!dropped);
        assert_eq!(
            second.attributes.len(),
            8,
            "3 own attributes and 5 fresh reason attributes"
        );
        let back = DeadLetterReason::from_message(&Message {
            attributes: second.attributes,
            ..message(0, "")
        })
        .expect("reason");
        assert_eq!(back.kind, "invalid_json");
    }
}
