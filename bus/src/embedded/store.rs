//! The state of one embedded queue and the SQS rules that change it. Everything here is
//! synchronous and takes `now` as an argument, so the rules are plain functions of time. The
//! messages and their indexes live in [`Messages`]; no call here scans the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::limits::{FIFO_DEDUP_WINDOW, MAX_VISIBILITY_TIMEOUT};
use crate::message::{
    AttributeValue, EntryError, Message, MessageAttributes, OutgoingMessage, Receipt, SendReceipt,
    SystemAttributes,
};
use crate::transport::QueueCounts;

use super::messages::{Messages, Visit};

/// A queue's settings as the embedded transport applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub fifo: bool,
    pub visibility_timeout: Duration,
    pub delay: Duration,
    pub retention: Duration,
    pub content_based_deduplication: bool,
    /// Target queue name and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

/// Message attributes as the store keeps them: the map's entries in order. A `BTreeMap`
/// allocates a node for eleven entries even when it holds one, as nearly every message does (its
/// `traceparent`): about 900 bytes, several times the rest of a small message.
pub(crate) type StoredAttributes = Box<[(String, AttributeValue)]>;

/// A message while the queue holds it.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub id: String,
    pub body: String,
    pub attributes: StoredAttributes,
    /// `AWSTraceHeader`.
    pub trace_header: Option<String>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sent_at: SystemTime,
    pub enqueued_at: Instant,
    pub visible_at: Instant,
    pub receive_count: u32,
    pub first_received_at: Option<SystemTime>,
    /// When the current receive happened: the 12-hour visibility cap counts from here.
    pub received_at: Option<Instant>,
    /// Identifies the current receipt; older receipts of the message are stale.
    pub nonce: Option<u64>,
}

impl Stored {
    fn in_flight(&self, now: Instant) -> bool {
        self.nonce.is_some() && self.visible_at > now
    }
}

/// A deduplication id seen within the window: what its send returned, kept small because a
/// FIFO queue holds one for every message sent in the last 5 minutes.
struct DedupEntry {
    at: Instant,
    message_id: String,
    seq: u64,
}

/// The messages of one queue, ordered by sequence number.
pub(crate) struct Store {
    uid: u64,
    pub settings: Settings,
    messages: Messages,
    dedup: HashMap<Arc<str>, DedupEntry>,
    /// Deduplication ids in the order they were recorded, so the window expires oldest first.
    dedup_order: VecDeque<(Instant, Arc<str>)>,
    next_seq: u64,
    next_nonce: u64,
}

/// What a receive pass produced.
pub(crate) struct Received {
    pub messages: Vec<Message>,
    /// Messages past `maxReceiveCount`, to be moved to the redrive target.
    pub dead: Vec<Stored>,
    /// The next instant at which an invisible message becomes visible.
    pub next_change: Option<Instant>,
}

impl Store {
    pub fn new(uid: u64, settings: Settings) -> Self {
        Self {
            uid,
            messages: Messages::new(settings.fifo),
            settings,
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            next_seq: 1,
            next_nonce: 1,
        }
    }

    /// Adds a sent message, applying FIFO deduplication and delays.
    pub fn send(&mut self, m: &OutgoingMessage, now: Instant) -> Result<SendReceipt, EntryError> {
        let dedup_id = self.check_fifo(m)?;
        self.expire(now);
        if let Some(id) = &dedup_id
            && let Some(seen) = self.dedup.get(id.as_str())
        {
            return Ok(self.send_receipt(seen.message_id.clone(), seen.seq));
        }
        let delay = m.delay.unwrap_or(self.settings.delay);
        let stored = Stored {
            id: uuid::Uuid::new_v4().to_string(),
            body: m.body.clone(),
            attributes: stored_attributes(&m.attributes),
            trace_header: m.trace_header.clone(),
            group_id: m.group_id.clone(),
            deduplication_id: dedup_id.clone(),
            sent_at: SystemTime::now(),
            enqueued_at: now,
            visible_at: now + delay,
            receive_count: 0,
            first_received_at: None,
            received_at: None,
            nonce: None,
        };
        let message_id = stored.id.clone();
        let seq = self.insert(stored, now);
        if let Some(id) = dedup_id {
            let id: Arc<str> = id.into();
            let entry = DedupEntry {
                at: now,
                message_id: message_id.clone(),
                seq,
            };
            self.dedup_order.push_back((now, Arc::clone(&id)));
            self.dedup.insert(id, entry);
        }
        Ok(self.send_receipt(message_id, seq))
    }

    /// Adds a message moved here by a redrive: same id, body and attributes, count reset.
    pub fn accept_dead_letter(&mut self, mut m: Stored, now: Instant) {
        m.visible_at = now;
        m.receive_count = 0;
        m.first_received_at = None;
        m.received_at = None;
        m.nonce = None;
        self.insert(m, now);
    }

    /// Stores a message under the next sequence number, and returns that number.
    fn insert(&mut self, m: Stored, now: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.messages.insert(seq, m, now);
        seq
    }

    fn send_receipt(&self, message_id: String, seq: u64) -> SendReceipt {
        SendReceipt {
            message_id,
            sequence_number: self.settings.fifo.then(|| format!("{seq:020}")),
        }
    }

    /// The deduplication id of a FIFO message, or why SQS would refuse it.
    fn check_fifo(&self, m: &OutgoingMessage) -> Result<Option<String>, EntryError> {
        let invalid = |msg: &str| Err(EntryError::sender("InvalidParameterValue", msg));
        if !self.settings.fifo {
            if m.deduplication_id.is_some() {
                return invalid("MessageDeduplicationId is only for FIFO queues");
            }
            return Ok(None);
        }
        if m.group_id.is_none() {
            return Err(EntryError::sender(
                "MissingParameter",
                "the request must contain the parameter MessageGroupId",
            ));
        }
        if m.delay.is_some_and(|d| !d.is_zero()) {
            return invalid("FIFO queues do not accept DelaySeconds per message");
        }
        match (
            &m.deduplication_id,
            self.settings.content_based_deduplication,
        ) {
            (Some(id), _) => Ok(Some(id.clone())),
            (None, true) => Ok(Some(hex::encode(Sha256::digest(m.body.as_bytes())))),
            (None, false) => invalid(
                "the queue should either have ContentBasedDeduplication enabled or \
                 MessageDeduplicationId provided explicitly",
            ),
        }
    }

    /// Drops messages past retention and deduplication ids past their window, and makes visible
    /// the messages that are due. Amortised: each message and id is dropped once, oldest first.
    fn expire(&mut self, now: Instant) {
        self.messages.advance(now, self.settings.retention);
        while let Some((at, _)) = self.dedup_order.front() {
            if *at + FIFO_DEDUP_WINDOW > now {
                break;
            }
            if let Some((at, id)) = self.dedup_order.pop_front()
                && self.dedup.get(&id).is_some_and(|d| d.at == at)
            {
                self.dedup.remove(&id);
            }
        }
    }

    /// Takes up to `max` receivable messages, making them invisible for `visibility`.
    ///
    /// Standard queues hand out the oldest visible messages. FIFO queues skip every group with a
    /// message in flight and stop within a group at its first invisible message. Messages past
    /// `maxReceiveCount` are taken out along the way, for the redrive.
    pub fn receive(&mut self, max: usize, visibility: Duration, now: Instant) -> Received {
        self.expire(now);
        let max_receives = self.settings.redrive.as_ref().map(|(_, n)| *n);
        let (uid, fifo, next_nonce) = (self.uid, self.settings.fifo, &mut self.next_nonce);
        let mut messages = Vec::new();
        let dead = self.messages.receive(max, now, |seq, m| {
            if max_receives.is_some_and(|n| m.receive_count >= n) {
                return Visit::Remove;
            }
            let nonce = *next_nonce;
            *next_nonce += 1;
            messages.push(deliver(
                m,
                seq,
                Receipt::new(format!("emb-{uid}-{seq}-{nonce}")),
                fifo,
            ));
            m.received_at = Some(now);
            m.visible_at = now + visibility;
            m.nonce = Some(nonce);
            Visit::Received
        });
        Received {
            messages,
            dead,
            next_change: self.messages.next_change(),
        }
    }

    /// The stored message a receipt names, checked for staleness.
    fn locate(&self, receipt: &Receipt) -> Result<Option<u64>, EntryError> {
        let invalid = || {
            EntryError::sender(
                "ReceiptHandleIsInvalid",
                format!("the receipt handle {receipt:?} is not valid"),
            )
        };
        let mut parts = receipt
            .as_str()
            .strip_prefix("emb-")
            .ok_or_else(invalid)?
            .split('-');
        let mut next = || {
            parts
                .next()
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(invalid)
        };
        let (uid, seq, nonce) = (next()?, next()?, next()?);
        if uid != self.uid {
            return Err(invalid());
        }
        match self.messages.get(seq) {
            None => Ok(None),
            Some(m) if m.nonce == Some(nonce) => Ok(Some(seq)),
            Some(_) => Err(invalid()),
        }
    }

    /// Deletes the message a receipt names. Deleting a message that is already gone succeeds, as
    /// in SQS; a stale receipt (the message was received again since) is refused.
    pub fn delete(&mut self, receipt: &Receipt) -> Result<(), EntryError> {
        if let Some(seq) = self.locate(receipt)? {
            self.messages.remove(seq);
        }
        Ok(())
    }

    /// Makes an in-flight message invisible for `timeout` from now (0: visible at once).
    pub fn change_visibility(
        &mut self,
        receipt: &Receipt,
        timeout: Duration,
        now: Instant,
    ) -> Result<(), EntryError> {
        let seq = self.locate(receipt)?.ok_or_else(|| {
            EntryError::sender(
                "ReceiptHandleIsInvalid",
                "the message of this receipt is gone",
            )
        })?;
        let m = self.messages.get(seq).expect("located just now");
        if !m.in_flight(now) {
            return Err(EntryError::sender(
                "MessageNotInflight",
                "the message is not in flight",
            ));
        }
        let received = m.received_at.unwrap_or(now);
        if timeout > MAX_VISIBILITY_TIMEOUT || now + timeout > received + MAX_VISIBILITY_TIMEOUT {
            return Err(EntryError::sender(
                "InvalidParameterValue",
                "a message can stay invisible at most 12 hours after it was received",
            ));
        }
        self.messages.set_visible_at(seq, now + timeout, now);
        Ok(())
    }

    /// Approximate counts, as `GetQueueAttributes` reports them.
    pub fn counts(&mut self, now: Instant) -> QueueCounts {
        self.expire(now);
        self.messages.counts()
    }

    /// Removes every message (`PurgeQueue`).
    pub fn purge(&mut self) {
        self.messages.clear();
    }
}

fn stored_attributes(attributes: &MessageAttributes) -> StoredAttributes {
    attributes
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Marks a message received (its `receive_count` and first receive) and builds what the
/// receiver gets.
fn deliver(m: &mut Stored, seq: u64, receipt: Receipt, fifo: bool) -> Message {
    m.receive_count += 1;
    m.first_received_at.get_or_insert_with(SystemTime::now);
    Message {
        id: m.id.clone(),
        body: m.body.clone(),
        attributes: m.attributes.iter().cloned().collect(),
        system: SystemAttributes {
            receive_count: m.receive_count,
            sent_at: m.sent_at,
            first_received_at: m.first_received_at,
            message_group_id: m.group_id.clone(),
            deduplication_id: m.deduplication_id.clone(),
            sequence_number: fifo.then(|| format!("{seq:020}")),
            trace_header: m.trace_header.clone(),
        },
        receipt,
    }
}

#[cfg(test)]
mod tests;
