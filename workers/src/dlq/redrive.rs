//! Moving dead letters back to their queue by receive, send and delete: a message leaves the
//! dead-letter queue only after its queue accepted it.
//!
//! One copy of each dead letter is sent; its other copies, and the notes that carried its
//! reason, are deleted only once the queue accepted that one. Dead letters whose recorded
//! source is another queue stay, and so do those with no recorded source when the DLQ is not the
//! dead-letter queue of this queue alone, unless forced.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use fleet_bus::consumer::dead_letter::{digest_of, own_attributes};
use fleet_bus::producer::BatchProducer;
use fleet_bus::topology::is_fifo_name;
use fleet_bus::{BusError, Message, OutgoingMessage, Transport};

use super::group::{DeadLetter, Key, OrphanNote, group};
use super::read::{Reader, hold_for};

/// Messages are read, decided and moved this many at a time, so memory stays bounded.
const CHUNK: usize = 1000;
/// From a FIFO queue, one receive at a time: it hands out no more of a group while earlier
/// messages of the group are held, so they are moved (deleted) before more are read.
const FIFO_CHUNK: usize = 10;
/// Messages being moved are held at least this long; a failed move reappears after it.
const HOLD: Duration = Duration::from_secs(60);

/// What to move.
#[derive(Clone, Debug, Default)]
pub struct RedriveOptions {
    /// Move at most this many dead letters.
    pub max: Option<usize>,
    /// Move dead letters whose recorded source is another queue, or that record none.
    pub force: bool,
    /// Move dead letters that record no source (the DLQ is the destination's alone).
    pub unattributed: bool,
}

/// What a redrive did.
#[derive(Debug, Default)]
pub struct RedriveReport {
    /// Dead letters now in the destination and gone from the dead-letter queue.
    pub moved: usize,
    /// Extra copies deleted after the destination accepted one.
    pub copies_removed: usize,
    /// Notes deleted after their message was moved.
    pub notes_removed: usize,
    /// Dead letters left because Fleet recorded another source queue, by that queue.
    pub left_foreign: BTreeMap<String, usize>,
    /// Dead letters left because they record no source queue.
    pub left_unattributed: usize,
    /// Notes left because their message is not in the dead-letter queue.
    pub left_orphan_notes: usize,
    /// Dead letters left because `max` were moved.
    pub left_over_max: usize,
    /// Messages that stayed in the dead-letter queue (or were copied but not deleted), with why.
    pub failed: Vec<(String, String)>,
}

/// Moves the dead letters that are in `dlq` when it starts to `to`, as the module documentation
/// says. `progress` hears how many messages each round settled.
///
/// # Errors
/// When a whole call fails; what was moved stays moved, what is held reappears in the
/// dead-letter queue when its hold ends.
pub async fn redrive(
    transport: &dyn Transport,
    dlq: &str,
    to: &str,
    options: &RedriveOptions,
    mut progress: impl FnMut(usize),
) -> Result<RedriveReport, BusError> {
    let from = transport.queue(dlq).await?;
    let dest = transport.queue(to).await?;
    // Only what is there now: a message dead-lettered again meanwhile is not moved in a loop.
    let present = from.admin().describe().await?.counts.visible;
    tracing::info!(dlq, to, present, "redriving by receive, send and delete");
    let mut run = Run {
        reader: Reader::new(from, hold_for(HOLD, present)),
        producer: BatchProducer::to_queue(to, dest.sender()),
        fifo: is_fifo_name(to),
        to,
        options,
        report: RedriveReport::default(),
        moved_keys: HashSet::new(),
        moved_digests: HashSet::new(),
    };
    let mut budget = usize::try_from(present).unwrap_or(usize::MAX);
    let chunk = if is_fifo_name(dlq) { FIFO_CHUNK } else { CHUNK };
    let outcome = async {
        while budget > 0 {
            let messages = run.reader.read(budget.min(chunk)).await?;
            if messages.is_empty() {
                break;
            }
            budget -= messages.len();
            let n = messages.len();
            run.chunk(messages).await;
            progress(n);
        }
        Ok::<(), BusError>(())
    }
    .await;
    // What was left (and what was read before a failure) becomes visible again now.
    run.reader.release_all().await;
    outcome.map(|()| run.report)
}

/// One redrive in progress.
struct Run<'a> {
    reader: Reader,
    producer: BatchProducer,
    fifo: bool,
    to: &'a str,
    options: &'a RedriveOptions,
    report: RedriveReport,
    /// Source messages moved: later copies of them are only deleted.
    moved_keys: HashSet<Key>,
    /// Digests of the messages moved: a note read later that names one is deleted.
    moved_digests: HashSet<String>,
}

/// Why a dead letter stays.
enum Leave {
    Foreign(String),
    Unattributed,
}

impl Run<'_> {
    /// Decides and moves one chunk of messages.
    async fn chunk(&mut self, messages: Vec<Message>) {
        let (letters, orphans) = group(messages);
        let mut to_move = Vec::new();
        let mut extra = Vec::new();
        for d in letters {
            if self.moved_keys.contains(&d.key()) {
                extra.push(d);
                continue;
            }
            match self.leave(&d) {
                Some(Leave::Foreign(q)) => *self.report.left_foreign.entry(q).or_default() += 1,
                Some(Leave::Unattributed) => self.report.left_unattributed += 1,
                None if self
                    .options
                    .max
                    .is_some_and(|m| self.report.moved + to_move.len() >= m) =>
                {
                    self.report.left_over_max += 1;
                }
                None => to_move.push(d),
            }
        }
        self.remove_copies(&extra).await;
        self.move_letters(to_move).await;
        self.orphans(&orphans).await;
    }

    fn leave(&self, d: &DeadLetter) -> Option<Leave> {
        if self.options.force {
            return None;
        }
        match d.source() {
            Some(q) if q != self.to => Some(Leave::Foreign(q.to_owned())),
            Some(_) => None,
            None if self.options.unattributed => None,
            None => Some(Leave::Unattributed),
        }
    }

    /// Sends one copy of each, then deletes it, its other copies and its notes.
    async fn move_letters(&mut self, letters: Vec<DeadLetter>) {
        if letters.is_empty() {
            return;
        }
        let outgoing: Vec<OutgoingMessage> = letters
            .iter()
            .map(|d| back_to_source(&d.message, self.fifo))
            .collect();
        let sent = self.producer.send_all(outgoing, |_| {}).await;
        for (i, e) in &sent.failed {
            let id = letters[*i].message.id.clone();
            self.report
                .failed
                .push((id, format!("not accepted by {}: {e}", self.to)));
        }
        let accepted: Vec<&DeadLetter> = sent.sent.iter().map(|(i, _)| &letters[*i]).collect();
        let ids: Vec<&str> = accepted.iter().map(|d| d.message.id.as_str()).collect();
        let deleted = self.reader.delete(&ids).await;
        let mut done = Vec::new();
        for (d, result) in accepted.into_iter().zip(deleted) {
            self.moved_keys.insert(d.key());
            self.moved_digests
                .insert(digest_of(&d.message.body, &d.message.attributes));
            match result {
                Ok(()) => {
                    self.report.moved += 1;
                    done.push(d);
                }
                // Copied but not deleted: moved again by a later redrive, a duplicate rather
                // than a loss. Its notes stay with it; its copies can go.
                Err(e) => {
                    self.report.failed.push((
                        d.message.id.clone(),
                        format!(
                            "copied to {} but not deleted from the dead-letter queue: {e}",
                            self.to
                        ),
                    ));
                    self.remove(d.copies.iter(), Removed::Copy).await;
                }
            }
        }
        for d in done {
            self.remove(d.copies.iter(), Removed::Copy).await;
            self.remove(d.notes.iter(), Removed::Note).await;
        }
    }

    /// Deletes dead letters whose source message was moved in an earlier chunk.
    async fn remove_copies(&mut self, letters: &[DeadLetter]) {
        for d in letters {
            let copies = std::iter::once(&d.message).chain(&d.copies);
            self.remove(copies, Removed::Copy).await;
            self.remove(d.notes.iter(), Removed::Note).await;
        }
    }

    /// Deletes the notes of messages moved earlier; leaves the others.
    async fn orphans(&mut self, orphans: &[OrphanNote]) {
        let (of_moved, left): (Vec<&OrphanNote>, Vec<&OrphanNote>) =
            orphans.iter().partition(|o| {
                o.note
                    .as_ref()
                    .is_some_and(|n| self.moved_digests.contains(&n.digest))
            });
        self.report.left_orphan_notes += left.len();
        self.remove(of_moved.into_iter().map(|o| &o.message), Removed::Note)
            .await;
    }

    async fn remove<'m>(&mut self, messages: impl Iterator<Item = &'m Message>, what: Removed) {
        let ids: Vec<&str> = messages.map(|m| m.id.as_str()).collect();
        if ids.is_empty() {
            return;
        }
        let results = self.reader.delete(&ids).await;
        for (id, r) in ids.iter().zip(results) {
            match (r, what) {
                (Ok(()), Removed::Copy) => self.report.copies_removed += 1,
                (Ok(()), Removed::Note) => self.report.notes_removed += 1,
                (Err(e), Removed::Copy) => self.report.failed.push((
                    (*id).to_owned(),
                    format!("an extra copy of a moved message, not deleted: {e}"),
                )),
                (Err(e), Removed::Note) => self.report.failed.push((
                    (*id).to_owned(),
                    format!("the note of a moved message, not deleted: {e}"),
                )),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Removed {
    Copy,
    Note,
}

/// The message to send back: the original body and attributes, without Fleet's reason
/// attribute (the next failure writes a fresh one).
fn back_to_source(m: &Message, fifo: bool) -> OutgoingMessage {
    let mut out = OutgoingMessage::new(m.body.clone());
    out.attributes = own_attributes(m);
    out.trace_header.clone_from(&m.system.trace_header);
    if fifo {
        out.group_id = Some(
            m.system
                .message_group_id
                .clone()
                .unwrap_or_else(|| "fleet-redrive".to_owned()),
        );
        out.deduplication_id = Some(format!("redrive-{}", m.id));
    }
    out
}
