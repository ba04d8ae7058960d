//! The message Fleet sends to a dead-letter queue: the original body and attributes, plus the
//! reason, so an operator sees why without digging through logs.
//!
//! The reason travels as one compact JSON attribute, [`ATTR_DEAD_LETTER`]:
//! `{"kind":"invalid_json","message":"...","attempt":1,"handler":"orders","queue":"fleet-orders","message_id":"..."}`.
//! `message_id` is the id the message had in its source queue: two dead letters with the same one
//! are copies of one message (a dead-letter send whose source delete failed), and `fleet dlq
//! inspect` shows them once.
//!
//! When the message already carries all 10 attributes SQS allows (or the attribute would take it
//! past the size limit), the message goes to the dead-letter queue untouched and a **note** goes
//! before it: a small message whose body is the same reason JSON plus the `digest` of the message
//! it explains, marked by the [`ATTR_NOTE`] attribute. [`note_of`] reads a note back and
//! [`digest_of`] pairs it with its message. No dead letter is without its reason. The
//! `traceparent` every send adds never takes the reason's place: when it holds the last slot it
//! moves to the `AWSTraceHeader` system attribute.

use sha2::{Digest, Sha256};

use crate::limits::{MAX_MESSAGE_ATTRIBUTES, MAX_SQS_MESSAGE_BYTES};
use crate::message::{AttributeValue, Message, MessageAttributes, OutgoingMessage};
use crate::trace::{TRACEPARENT, TraceContext};

/// The reason attribute: compact JSON (see the module documentation).
pub const ATTR_DEAD_LETTER: &str = "fleet.dead-letter";
/// Marks a note that carries the reason of a dead letter which had no room for it; its value is
/// the [`digest_of`] that message.
pub const ATTR_NOTE: &str = "fleet.dead-letter-note";

/// Read only, from dead letters written before the reason became one attribute: the error kind.
pub const LEGACY_ATTR_ERROR_KIND: &str = "fleet.error.kind";
/// Read only (legacy): the error message.
pub const LEGACY_ATTR_ERROR_MESSAGE: &str = "fleet.error.message";
/// Read only (legacy): the attempt that failed last.
pub const LEGACY_ATTR_ATTEMPT: &str = "fleet.attempt";
/// Read only (legacy): the handler that gave up.
pub const LEGACY_ATTR_HANDLER: &str = "fleet.handler";
/// Read only (legacy): the source queue.
pub const LEGACY_ATTR_SOURCE_QUEUE: &str = "fleet.source-queue";

/// A message's own attributes: all but the `fleet.` reason attributes of an earlier
/// dead-lettering (a redriven message may still carry them).
pub fn own_attributes(m: &Message) -> MessageAttributes {
    m.attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("fleet."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The trace context must not cost the reason its attribute: a message whose `traceparent`
/// takes the last attribute slot has it moved to the trace header, which the dead-letter queue
/// (SQS) carries outside the attribute limit.
fn trace_context_to_header(out: &mut OutgoingMessage) {
    if out.attributes.len() < MAX_MESSAGE_ATTRIBUTES || out.trace_header.is_some() {
        return;
    }
    let context = out
        .attributes
        .get(TRACEPARENT)
        .and_then(AttributeValue::as_str)
        .and_then(TraceContext::from_traceparent);
    if let Some(context) = context {
        out.attributes.remove(TRACEPARENT);
        out.trace_header = Some(context.to_xray());
    }
}

/// Longest error message kept in the reason.
const MAX_REASON_CHARS: usize = 1024;

/// Why a message is dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterReason {
    /// The error kind label (`invalid_json`, `timeout`, `released_at_last_receive`, ...).
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// The attempt that failed last.
    pub attempt: u32,
    /// The handler's name.
    pub handler: String,
    /// The source queue.
    pub queue: String,
    /// The message's id in its source queue: copies of one message share it.
    #[serde(default)]
    pub message_id: String,
}

impl DeadLetterReason {
    /// The reason as compact JSON, its message cut to `max_chars`.
    fn to_json(&self, max_chars: usize) -> String {
        let short = Self {
            message: truncate(&self.message, max_chars),
            ..self.clone()
        };
        serde_json::to_string(&short).unwrap_or_default()
    }

    /// Reads the reason back from a dead letter: the [`ATTR_DEAD_LETTER`] attribute, or the five
    /// attributes older versions wrote. `None` for a message Fleet did not dead-letter itself (or
    /// one whose reason is in a note, see [`note_of`]).
    pub fn from_message(m: &Message) -> Option<Self> {
        let text = |k: &str| {
            m.attributes
                .get(k)
                .and_then(AttributeValue::as_str)
                .map(str::to_owned)
        };
        if let Some(json) = text(ATTR_DEAD_LETTER) {
            return serde_json::from_str(&json).ok();
        }
        Some(Self {
            kind: text(LEGACY_ATTR_ERROR_KIND)?,
            message: text(LEGACY_ATTR_ERROR_MESSAGE).unwrap_or_default(),
            attempt: text(LEGACY_ATTR_ATTEMPT)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            handler: text(LEGACY_ATTR_HANDLER).unwrap_or_default(),
            queue: text(LEGACY_ATTR_SOURCE_QUEUE).unwrap_or_default(),
            message_id: String::new(),
        })
    }
}

/// A note in a dead-letter queue: the reason of the dead letter whose digest it names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterNote {
    /// [`digest_of`] the dead letter it explains.
    pub digest: String,
    /// Why that message was dead-lettered.
    pub reason: DeadLetterReason,
}

/// Reads a note (a message marked with [`ATTR_NOTE`]); `None` for any other message.
pub fn note_of(m: &Message) -> Option<DeadLetterNote> {
    m.attributes.get(ATTR_NOTE)?;
    serde_json::from_str(&m.body).ok()
}

/// Whether a message is a note (marked with [`ATTR_NOTE`]), readable or not.
pub fn is_note(m: &Message) -> bool {
    m.attributes.contains_key(ATTR_NOTE)
}

/// A digest of a message's body and own attributes: what a note names to pair with its message.
pub fn digest_of(body: &str, attributes: &MessageAttributes) -> String {
    let mut h = Sha256::new();
    h.update(body.as_bytes());
    for (name, value) in attributes.iter().filter(|(k, _)| !k.starts_with("fleet.")) {
        h.update([0]);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(value.data_type().as_bytes());
        h.update([0]);
        h.update(value.as_str().unwrap_or_default().as_bytes());
        h.update(value.as_bytes().unwrap_or_default());
    }
    hex::encode(h.finalize())
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max_chars).collect();
    t.push('…');
    t
}

/// What to send to the dead-letter queue for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterOut {
    /// The dead letter: the original body and attributes, with the reason attribute when it fits.
    pub message: OutgoingMessage,
    /// The note carrying the reason, when it did not fit on the message; sent first.
    pub note: Option<OutgoingMessage>,
}

/// Builds what to send to the dead-letter queue: the message with its reason as one attribute,
/// the error message shortened if that makes it fit, or else the message untouched and a note.
pub fn dead_letter_message(m: &Message, reason: &DeadLetterReason, fifo: bool) -> DeadLetterOut {
    // A redriven message may still carry the reason of an earlier dead-lettering: drop it.
    let mut out = OutgoingMessage {
        body: m.body.clone(),
        attributes: own_attributes(m),
        // Its trace context, when it came in the header rather than an attribute.
        trace_header: m.system.trace_header.clone(),
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
    trace_context_to_header(&mut out);
    if out.attributes.len() < MAX_MESSAGE_ATTRIBUTES {
        for max_chars in [MAX_REASON_CHARS, 64, 0] {
            let mut with_reason = out.clone();
            with_reason.attributes.insert(
                ATTR_DEAD_LETTER.to_owned(),
                AttributeValue::string(reason.to_json(max_chars)),
            );
            if with_reason.size() <= MAX_SQS_MESSAGE_BYTES {
                return DeadLetterOut {
                    message: with_reason,
                    note: None,
                };
            }
        }
    }
    let note = DeadLetterNote {
        digest: digest_of(&out.body, &out.attributes),
        reason: DeadLetterReason {
            message: truncate(&reason.message, MAX_REASON_CHARS),
            ..reason.clone()
        },
    };
    let mut note_message = OutgoingMessage::new(serde_json::to_string(&note).unwrap_or_default())
        .attribute(ATTR_NOTE, AttributeValue::string(note.digest.clone()));
    note_message.group_id.clone_from(&out.group_id);
    if fifo {
        note_message.deduplication_id = Some(format!("dln-{}", m.id));
    }
    DeadLetterOut {
        message: out,
        note: Some(note_message),
    }
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
                trace_header: None,
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
            message_id: "m-1".into(),
        }
    }

    fn received(out: &OutgoingMessage) -> Message {
        Message {
            body: out.body.clone(),
            attributes: out.attributes.clone(),
            ..message(0, "")
        }
    }

    #[test]
    fn the_reason_is_one_attribute_beside_the_messages_own() {
        let out = dead_letter_message(&message(9, "{}"), &reason(), false);
        assert_eq!(out.note, None);
        assert_eq!(out.message.attributes.len(), 10);
        assert_eq!(out.message.group_id, None);
        let back = DeadLetterReason::from_message(&received(&out.message)).expect("reason");
        assert_eq!((back.kind.as_str(), back.attempt), ("invalid_json", 3));
        assert_eq!(back.message_id, "m-1");
        assert_eq!(
            back.message.chars().count(),
            MAX_REASON_CHARS + 1,
            "truncated with an ellipsis"
        );
    }

    #[test]
    fn a_trace_context_in_the_last_slot_moves_to_the_header_for_the_reason() {
        let context = TraceContext::root();
        let mut m = message(9, "{}");
        m.attributes.insert(
            TRACEPARENT.into(),
            AttributeValue::string(context.traceparent()),
        );
        let out = dead_letter_message(&m, &reason(), false);
        assert_eq!(out.note, None, "the reason fits on the message");
        assert!(out.message.attributes.contains_key(ATTR_DEAD_LETTER));
        assert!(!out.message.attributes.contains_key(TRACEPARENT));
        assert_eq!(out.message.trace_header, Some(context.to_xray()));
        // With a slot to spare, the context stays where it was.
        let mut roomy = message(3, "{}");
        roomy.attributes.insert(
            TRACEPARENT.into(),
            AttributeValue::string(context.traceparent()),
        );
        let out = dead_letter_message(&roomy, &reason(), false);
        assert!(out.message.attributes.contains_key(TRACEPARENT));
        assert_eq!(out.message.trace_header, None);
    }

    #[test]
    fn a_message_with_ten_attributes_goes_untouched_after_a_note() {
        let m = message(10, "{\"type\": \"order.paid\"}");
        let out = dead_letter_message(&m, &reason(), true);
        assert_eq!(
            out.message.attributes, m.attributes,
            "its own attributes, all of them"
        );
        assert_eq!(out.message.body, m.body);
        assert_eq!(
            DeadLetterReason::from_message(&received(&out.message)),
            None
        );
        let note = out.note.expect("a note");
        assert_eq!(
            note.group_id.as_deref(),
            Some("g"),
            "FIFO: the note goes in the message's group"
        );
        assert_eq!(note.deduplication_id.as_deref(), Some("dln-m-1"));
        let note = note_of(&received(&note)).expect("a readable note");
        assert_eq!(note.digest, digest_of(&m.body, &m.attributes));
        assert_eq!(note.reason.kind, "invalid_json");
        assert_eq!(note.reason.message_id, "m-1");
        assert!(note_of(&m).is_none(), "an ordinary message is no note");
    }

    #[test]
    fn a_message_near_the_size_limit_keeps_a_shortened_reason_or_gets_a_note() {
        let near = "x".repeat(MAX_SQS_MESSAGE_BYTES - 400);
        let out = dead_letter_message(&message(0, &near), &reason(), false);
        assert_eq!(out.note, None);
        let back = DeadLetterReason::from_message(&received(&out.message)).expect("reason");
        assert!(back.message.chars().count() <= 65, "{}", back.message.len());
        assert!(out.message.size() <= MAX_SQS_MESSAGE_BYTES);
        let full = "x".repeat(MAX_SQS_MESSAGE_BYTES - 10);
        let out = dead_letter_message(&message(0, &full), &reason(), false);
        assert_eq!(out.message.body.len(), full.len(), "the body is never cut");
        assert!(out.note.is_some());
    }

    #[test]
    fn an_earlier_reason_is_replaced_and_the_legacy_form_is_read() {
        let mut m = message(3, "{}");
        let old = DeadLetterReason {
            kind: "first_failure".into(),
            ..reason()
        };
        m.attributes = dead_letter_message(&m, &old, false).message.attributes;
        m.attributes
            .insert(LEGACY_ATTR_HANDLER.into(), AttributeValue::string("old"));
        let second = dead_letter_message(&m, &reason(), false).message;
        assert_eq!(
            second.attributes.len(),
            4,
            "3 own attributes and the fresh reason"
        );
        let back = DeadLetterReason::from_message(&received(&second)).expect("reason");
        assert_eq!(back.kind, "invalid_json");

        let mut legacy = message(0, "{}");
        for (k, v) in [
            (LEGACY_ATTR_ERROR_KIND, "timeout"),
            (LEGACY_ATTR_ERROR_MESSAGE, "too slow"),
            (LEGACY_ATTR_ATTEMPT, "5"),
            (LEGACY_ATTR_HANDLER, "orders"),
            (LEGACY_ATTR_SOURCE_QUEUE, "fleet-orders"),
        ] {
            legacy
                .attributes
                .insert(k.into(), AttributeValue::string(v));
        }
        let back = DeadLetterReason::from_message(&legacy).expect("legacy reason");
        assert_eq!(
            (back.kind.as_str(), back.attempt, back.queue.as_str()),
            ("timeout", 5, "fleet-orders")
        );
    }
}
