//! What the messages of a dead-letter queue are: dead letters (a message with its reason, its
//! extra copies and its notes) and notes whose message is not there.
//!
//! - A **copy**: the engine's dead-letter send succeeded but the delete from the source queue
//!   failed, so the message was dead-lettered again. Copies share the reason's `queue` and
//!   `message_id` (the id in the source queue) and are shown, and moved, once.
//! - A **note**: the reason of a message that had no room for the reason attribute; it names the
//!   message by [`digest_of`] its body and attributes. It is shown as that message's reason, not
//!   as a message of its own. A note whose message is not there is an orphan.

use std::collections::HashMap;

use fleet_bus::Message;
use fleet_bus::consumer::dead_letter::{
    DeadLetterNote, DeadLetterReason, digest_of, is_note, note_of,
};

/// A dead-lettered message, the reason Fleet recorded, and its copies and notes.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The message as it sits in the dead-letter queue (the first copy read).
    pub message: Message,
    /// Why it was dead-lettered: from its attribute or its note; `None` when nothing recorded
    /// it (a queue's redrive policy moved it, or it was sent to the DLQ directly).
    pub reason: Option<DeadLetterReason>,
    /// Other copies of the same source message.
    pub copies: Vec<Message>,
    /// The notes that carry its reason (empty when the reason is an attribute).
    pub notes: Vec<Message>,
}

impl DeadLetter {
    /// The source queue Fleet recorded, if any.
    pub fn source(&self) -> Option<&str> {
        self.reason
            .as_ref()
            .map(|r| r.queue.as_str())
            .filter(|q| !q.is_empty())
    }

    /// Whether the reason came from a note.
    pub fn reason_in_note(&self) -> bool {
        !self.notes.is_empty()
    }

    /// Identifies the source message: copies of one message have the same key.
    pub(crate) fn key(&self) -> Key {
        match &self.reason {
            Some(r) if !r.message_id.is_empty() => {
                Key::Source(r.queue.clone(), r.message_id.clone())
            }
            _ => Key::Own(self.message.id.clone()),
        }
    }
}

/// A note whose message is not among the messages read.
#[derive(Clone, Debug)]
pub struct OrphanNote {
    /// The note as it sits in the dead-letter queue.
    pub message: Message,
    /// What it says (`None` when its body cannot be read as a note).
    pub note: Option<DeadLetterNote>,
}

/// Which source message a dead letter is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The source queue and the message's id there.
    Source(String, String),
    /// No recorded source id: the message's own id in the DLQ.
    Own(String),
}

/// Sorts messages read from a dead-letter queue into dead letters (in the order read) and
/// orphan notes.
pub(crate) fn group(messages: Vec<Message>) -> (Vec<DeadLetter>, Vec<OrphanNote>) {
    let (notes, messages): (Vec<Message>, Vec<Message>) = messages.into_iter().partition(is_note);
    let mut by_digest: HashMap<String, Vec<(Message, DeadLetterNote)>> = HashMap::new();
    let mut orphans = Vec::new();
    for m in notes {
        match note_of(&m) {
            Some(n) => by_digest.entry(n.digest.clone()).or_default().push((m, n)),
            None => orphans.push(OrphanNote {
                message: m,
                note: None,
            }),
        }
    }
    let mut paired: HashMap<String, DeadLetterReason> = HashMap::new();
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for m in messages {
        let mut letter = DeadLetter {
            reason: DeadLetterReason::from_message(&m),
            message: m,
            copies: Vec::new(),
            notes: Vec::new(),
        };
        if letter.reason.is_none() {
            let digest = digest_of(&letter.message.body, &letter.message.attributes);
            if let Some(found) = by_digest.remove(&digest) {
                // Copies of this message pair with the same notes: the reason stays known.
                if let Some((_, note)) = found.first() {
                    paired.insert(digest.clone(), note.reason.clone());
                }
                letter.notes = found.into_iter().map(|(m, _)| m).collect();
            }
            letter.reason = paired.get(&digest).cloned();
        }
        match index.get(&letter.key()) {
            Some(&i) => {
                let first = &mut letters[i];
                first.copies.push(letter.message);
                first.notes.extend(letter.notes);
            }
            None => {
                index.insert(letter.key(), letters.len());
                letters.push(letter);
            }
        }
    }
    orphans.extend(by_digest.into_values().flatten().map(|(m, n)| OrphanNote {
        message: m,
        note: Some(n),
    }));
    (letters, orphans)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use fleet_bus::consumer::dead_letter::dead_letter_message;
    use fleet_bus::{AttributeValue, OutgoingMessage, Receipt, SystemAttributes};

    use super::*;

    fn received(id: &str, out: &OutgoingMessage) -> Message {
        Message {
            id: id.to_owned(),
            body: out.body.clone(),
            attributes: out.attributes.clone(),
            system: SystemAttributes {
                receive_count: 1,
                sent_at: SystemTime::now(),
                first_received_at: None,
                message_group_id: None,
                deduplication_id: None,
                sequence_number: None,
                trace_header: None,
            },
            receipt: Receipt::new(format!("r-{id}")),
        }
    }

    fn source(id: &str, attributes: usize) -> Message {
        let mut out = OutgoingMessage::new(format!("{{\"id\":\"{id}\"}}"));
        for i in 0..attributes {
            out.attributes
                .insert(format!("a{i}"), AttributeValue::string("v"));
        }
        received(id, &out)
    }

    fn reason(m: &Message) -> DeadLetterReason {
        DeadLetterReason {
            kind: "timeout".into(),
            message: "slow".into(),
            attempt: 3,
            handler: "h".into(),
            queue: "orders".into(),
            message_id: m.id.clone(),
        }
    }

    #[test]
    fn copies_group_by_source_id_and_notes_pair_with_their_message() {
        let x = source("x", 1);
        let x_out = dead_letter_message(&x, &reason(&x), false);
        let m = source("m", 10);
        let m_out = dead_letter_message(&m, &reason(&m), false);
        let m_note = m_out.note.clone().expect("a note");
        let gone = source("gone", 10);
        let gone_note = dead_letter_message(&gone, &reason(&gone), false)
            .note
            .expect("a note");
        let bare = received("bare", &OutgoingMessage::new("{}"));
        let read = vec![
            received("d1", &x_out.message),
            received("d2", &m_note),
            received("d3", &m_out.message),
            received("d4", &x_out.message),
            received("d5", &gone_note),
            received("d6", &m_note),
            received("d7", &m_out.message),
            bare,
        ];
        let (letters, orphans) = group(read);
        let summary: Vec<(&str, usize, usize, bool)> = letters
            .iter()
            .map(|d| {
                (
                    d.message.id.as_str(),
                    d.copies.len(),
                    d.notes.len(),
                    d.reason.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("d1", 1, 0, true),
                ("d3", 1, 2, true),
                ("bare", 0, 0, false)
            ]
        );
        assert_eq!(
            letters[1].reason.as_ref().map(|r| r.message_id.as_str()),
            Some("m")
        );
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].message.id, "d5");
        assert_eq!(
            orphans[0]
                .note
                .as_ref()
                .map(|n| n.reason.message_id.as_str()),
            Some("gone")
        );
    }
}
