//! Dead letters as text for people (producers' text escaped, see [`crate::terminal`]) and as
//! JSON for tools (exact).

use fleet_bus::Message;
use fleet_bus::consumer::dead_letter::DeadLetterReason;
use serde_json::{Value, json};

use super::{DeadLetter, Inspection, OrphanNote};
use crate::terminal::escape;

/// Characters of a body shown in text output.
const PREVIEW_CHARS: usize = 120;

/// `n` and the noun, singular or plural.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn sent(m: &Message) -> String {
    humantime::format_rfc3339_seconds(m.system.sent_at).to_string()
}

fn preview(m: &Message) -> String {
    escape(&m.body.chars().take(PREVIEW_CHARS).collect::<String>())
}

fn reason_text(r: &DeadLetterReason) -> String {
    escape(&format!(
        "{} from {} after attempt {} in {}: {}",
        r.kind, r.queue, r.attempt, r.handler, r.message
    ))
}

/// One dead letter as text: its id, when it was sent, the reason, how many copies there are,
/// and the start of its body on a second line.
pub fn to_text(d: &DeadLetter) -> String {
    let reason = d.reason.as_ref().map_or_else(
        || "no reason recorded: moved here by a redrive policy, or sent here directly".to_owned(),
        reason_text,
    );
    let mut extras = Vec::new();
    if !d.copies.is_empty() {
        extras.push(format!("{} copies", d.copies.len() + 1));
    }
    if d.reason_in_note() {
        extras.push("reason from a note".to_owned());
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!("  ({})", extras.join(", "))
    };
    format!(
        "{}  sent {}  {reason}{extras}\n    {}",
        escape(&d.message.id),
        sent(&d.message),
        preview(&d.message)
    )
}

/// A note whose message is not in the dead-letter queue, as text.
pub fn orphan_to_text(o: &OrphanNote) -> String {
    let what = match &o.note {
        Some(n) => format!(
            "note without its message: {}; its message {} is not in the dead-letter queue",
            reason_text(&n.reason),
            escape(&n.reason.message_id)
        ),
        None => format!("unreadable note: {}", preview(&o.message)),
    };
    format!(
        "{}  sent {}  {what}",
        escape(&o.message.id),
        sent(&o.message)
    )
}

fn reason_json(r: &DeadLetterReason) -> Value {
    json!({
        "kind": r.kind, "message": r.message, "attempt": r.attempt, "handler": r.handler,
        "queue": r.queue, "message_id": r.message_id,
    })
}

fn ids(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

/// One dead letter as JSON: exact, nothing escaped. `dlq_receive_count` is how often it was
/// received in the dead-letter queue (every inspection counts), not in its source queue.
pub fn to_json(d: &DeadLetter) -> Value {
    let reason_from = match (&d.reason, d.reason_in_note()) {
        (None, _) => Value::Null,
        (Some(_), true) => Value::from("note"),
        (Some(_), false) => Value::from("attribute"),
    };
    json!({
        "message_id": d.message.id,
        "sent_at": sent(&d.message),
        "dlq_receive_count": d.message.system.receive_count,
        "reason": d.reason.as_ref().map(reason_json),
        "reason_from": reason_from,
        "copies": ids(&d.copies),
        "notes": ids(&d.notes),
        "body": d.message.body,
    })
}

/// A note whose message is not in the dead-letter queue, as JSON.
pub fn orphan_to_json(o: &OrphanNote) -> Value {
    json!({
        "orphan_note": true,
        "message_id": o.message.id,
        "sent_at": sent(&o.message),
        "dlq_receive_count": o.message.system.receive_count,
        "note": o.note.as_ref().map(|n| json!({"digest": n.digest, "reason": reason_json(&n.reason)})),
        "body": o.message.body,
    })
}

/// The last line of an inspection that listed `listed` dead letters: how many there are, what
/// else the messages read were, and what could not be read.
pub fn summary(i: &Inspection, listed: usize, dlq: &str) -> String {
    let letters = i.letters.len();
    let mut line = format!("{listed} of {letters} dead letter(s) in {dlq}");
    let copies: usize = i.letters.iter().map(|d| d.copies.len()).sum();
    let notes: usize = i.letters.iter().map(|d| d.notes.len()).sum();
    let orphans = i.orphan_notes.len();
    if i.messages_read != letters {
        let mut parts = Vec::new();
        if copies > 0 {
            parts.push(count(copies, "extra copy", "extra copies"));
        }
        if notes > 0 {
            parts.push(count(
                notes,
                "note with its message",
                "notes with their message",
            ));
        }
        if orphans > 0 {
            parts.push(count(
                orphans,
                "note without its message",
                "notes without their message",
            ));
        }
        line.push_str(&format!(
            " ({} messages: {})",
            i.messages_read,
            parts.join(", ")
        ));
    }
    let counted = usize::try_from(i.counted).unwrap_or(usize::MAX);
    if i.messages_read < counted {
        line.push_str(&format!(
            "; the queue counted {counted} message(s) and {} did not come back to be read: run again",
            counted - i.messages_read
        ));
    }
    if i.in_flight > 0 {
        line.push_str(&format!(
            "; {} more in flight (held by another reader until their visibility timeout ends), not read",
            i.in_flight
        ));
    }
    line
}
