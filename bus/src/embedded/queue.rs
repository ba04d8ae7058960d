//! An embedded queue: SQS semantics in process, on tokio's clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::BusState;
use super::store::{Settings, Store, Stored};
use crate::error::BusError;
use crate::limits::{MAX_SQS_BATCH_BYTES, MAX_SQS_MESSAGE_BYTES, MAX_VISIBILITY_TIMEOUT};
use crate::message::{
    EntryError, EntryResult, Message, OutgoingMessage, Receipt, ReceiveRequest, SendReceipt,
    VisibilityChange,
};
use crate::trace;
use crate::transport::{Queue, QueueAdmin, QueueDescription, RedrivePolicy, Sender};
use crate::validate;

/// How many calls of each SQS API an embedded queue has served: the cost a consumer would have
/// on SQS, where every call is billed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiCalls {
    /// `ReceiveMessage` calls.
    pub receive: u64,
    /// `DeleteMessageBatch` calls.
    pub delete: u64,
    /// `ChangeMessageVisibilityBatch` calls.
    pub change_visibility: u64,
    /// `SendMessageBatch` calls.
    pub send: u64,
    /// `GetQueueAttributes` calls.
    pub describe: u64,
}

impl ApiCalls {
    /// All calls together.
    pub fn total(&self) -> u64 {
        self.receive + self.delete + self.change_visibility + self.send + self.describe
    }
}

#[derive(Default)]
struct Counters {
    receive: AtomicU64,
    delete: AtomicU64,
    change_visibility: AtomicU64,
    send: AtomicU64,
    describe: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A queue of the embedded bus.
pub struct EmbeddedQueue {
    name: String,
    arn: String,
    store: Mutex<Store>,
    /// Wakes long polls when a message may have become receivable.
    notify: Notify,
    calls: Counters,
    bus: Weak<BusState>,
}

impl EmbeddedQueue {
    pub(crate) fn new(
        uid: u64,
        name: &str,
        arn: String,
        settings: Settings,
        bus: Weak<BusState>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            arn,
            store: Mutex::new(Store::new(uid, settings)),
            notify: Notify::new(),
            calls: Counters::default(),
            bus,
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // The store panics only on a broken invariant of its indexes (a bug), never on input,
        // so a poisoned lock is still the best state there is.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub(crate) fn settings(&self) -> Settings {
        self.store().settings.clone()
    }

    pub(crate) fn set_settings(&self, settings: Settings) {
        self.store().settings = settings;
        self.notify.notify_waiters();
    }

    /// How many API calls this queue has served.
    pub fn api_calls(&self) -> ApiCalls {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ApiCalls {
            receive: get(&self.calls.receive),
            delete: get(&self.calls.delete),
            change_visibility: get(&self.calls.change_visibility),
            send: get(&self.calls.send),
            describe: get(&self.calls.describe),
        }
    }

    /// Removes every message (`PurgeQueue`).
    pub fn purge(&self) {
        self.store().purge();
    }

    /// Stores a message delivered by a topic subscription (not an API call of this queue).
    pub(crate) fn deliver(&self, message: &OutgoingMessage) -> Result<SendReceipt, EntryError> {
        if let Some(problem) = validate::entry_problem(message, MAX_SQS_MESSAGE_BYTES) {
            return Err(problem);
        }
        let receipt = self.store().send(message, Instant::now())?;
        self.notify.notify_waiters();
        Ok(receipt)
    }

    fn accept_dead_letters(&self, dead: Vec<Stored>) {
        let now = Instant::now();
        let mut store = self.store();
        for m in dead {
            store.accept_dead_letter(m, now);
        }
        drop(store);
        self.notify.notify_waiters();
    }

    /// Hands messages past `maxReceiveCount` to the redrive target. The source lock is released
    /// first, so two queues never hold each other's locks.
    fn redrive(&self, dead: Vec<Stored>) {
        if dead.is_empty() {
            return;
        }
        let target = self
            .settings()
            .redrive
            .and_then(|(name, _)| self.bus.upgrade().and_then(|bus| bus.queue(&name)));
        match target {
            Some(q) => q.accept_dead_letters(dead),
            // SQS keeps a message whose dead-letter queue was deleted; so do we.
            None => {
                let now = Instant::now();
                let mut store = self.store();
                for m in dead {
                    store.accept_dead_letter(m, now);
                }
            }
        }
    }

    fn receive_once(
        &self,
        request: &ReceiveRequest,
        visibility: Duration,
    ) -> (Vec<Message>, Option<Instant>) {
        let now = Instant::now();
        let received = self.store().receive(request.max_messages, visibility, now);
        self.redrive(received.dead);
        (received.messages, received.next_change)
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn receive(&self, request: &ReceiveRequest) -> Result<Vec<Message>, BusError> {
        bump(&self.calls.receive);
        validate::check_receive(
            &self.name,
            request.max_messages,
            request.wait_time,
            request.visibility_timeout,
        )?;
        let visibility = request
            .visibility_timeout
            .unwrap_or_else(|| self.settings().visibility_timeout);
        let deadline = Instant::now() + request.wait_time;
        loop {
            // Register for wake-ups before looking, so a send between the look and the wait
            // is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (messages, next_change) = self.receive_once(request, visibility);
            if !messages.is_empty() || Instant::now() >= deadline {
                return Ok(messages);
            }
            let until = next_change.map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError> {
        bump(&self.calls.delete);
        validate::check_batch_len(&self.name, "DeleteMessageBatch", receipts.len())?;
        let results: Vec<_> = {
            let mut store = self.store();
            receipts.iter().map(|r| store.delete(r)).collect()
        };
        // A delete can unlock a FIFO group.
        self.notify.notify_waiters();
        Ok(results)
    }

    async fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError> {
        bump(&self.calls.change_visibility);
        validate::check_batch_len(&self.name, "ChangeMessageVisibilityBatch", changes.len())?;
        let now = Instant::now();
        let results: Vec<_> = {
            let mut store = self.store();
            changes
                .iter()
                .map(|c| store.change_visibility(&c.receipt, c.timeout, now))
                .collect()
        };
        self.notify.notify_waiters();
        Ok(results)
    }

    fn receive_is_cancel_safe(&self) -> bool {
        // A receive takes messages only inside one synchronous step under the lock.
        true
    }
}

#[async_trait]
impl Sender for EmbeddedQueue {
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        bump(&self.calls.send);
        validate::check_send_batch(
            &self.name,
            "SendMessageBatch",
            messages,
            MAX_SQS_BATCH_BYTES,
        )?;
        let stamped = trace::stamp(messages, trace::Stamp::SQS);
        let now = Instant::now();
        let results: Vec<_> = {
            let mut store = self.store();
            stamped
                .iter()
                .map(
                    |m| match validate::entry_problem(m, MAX_SQS_MESSAGE_BYTES) {
                        Some(problem) => Err(problem),
                        None => store.send(m, now),
                    },
                )
                .collect()
        };
        self.notify.notify_waiters();
        Ok(results)
    }
}

#[async_trait]
impl QueueAdmin for EmbeddedQueue {
    async fn describe(&self) -> Result<QueueDescription, BusError> {
        bump(&self.calls.describe);
        let mut store = self.store();
        let counts = store.counts(Instant::now());
        let s = &store.settings;
        let redrive = s.redrive.as_ref().map(|(name, max)| RedrivePolicy {
            dead_letter_target_arn: super::queue_arn(name),
            max_receive_count: *max,
        });
        Ok(QueueDescription {
            name: self.name.clone(),
            arn: self.arn.clone(),
            fifo: s.fifo,
            visibility_timeout: s.visibility_timeout.min(MAX_VISIBILITY_TIMEOUT),
            delay: s.delay,
            retention: s.retention,
            redrive,
            counts,
        })
    }
}
