#![allow(dead_code)] // each test binary uses a different part
//! The embedded transport with faults injected per operation, as SQS shows them under load or in
//! an outage: whole calls that fail (throttling, 5xx) or hang before they answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{
    Applied, BusError, Declaration, EntryResult, Message, OutgoingMessage, Publisher, Queue,
    QueueAdmin, QueueDescription, QueueHandle, Receipt, ReceiveRequest, SendReceipt, Sender,
    Transport, VisibilityChange,
};

/// A queue operation that faults can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Receive,
    Delete,
    ChangeVisibility,
    /// `SendMessageBatch`, on any queue (dead-letter queues included).
    Send,
}

/// What an injected fault does to a call.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The call fails as a whole with this AWS error code (retryable or not).
    Fail { code: &'static str, retryable: bool },
    /// The call answers only after this long (and then does what it was asked).
    Hang(Duration),
}

impl Fault {
    /// SQS throttling: a whole call refused, worth retrying.
    pub fn throttled() -> Self {
        Fault::Fail {
            code: "ThrottlingException",
            retryable: true,
        }
    }
}

struct Rule {
    call: Call,
    queue: Option<String>,
    fault: Fault,
    /// Calls it still applies to; `None`: until cleared.
    remaining: Option<u32>,
}

/// The embedded bus behind a switchboard of faults.
#[derive(Clone)]
pub struct Faulty {
    pub bus: EmbeddedBus,
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Whether a receive may be dropped without taking messages (as the embedded queue's may;
    /// SQS's may not).
    cancel_safe: bool,
    /// Received messages look this much older than the queue stamped them.
    backdate: Arc<Mutex<Duration>>,
}

impl Faulty {
    pub fn new(bus: EmbeddedBus) -> Self {
        Self {
            bus,
            rules: Arc::default(),
            cancel_safe: true,
            backdate: Arc::default(),
        }
    }

    /// Received messages carry a `SentTimestamp` this much earlier than the queue's.
    pub fn backdate_receives(&self, by: Duration) {
        *self.backdate.lock().expect("lock") = by;
    }

    /// Receives behave as on SQS: the consumer may not drop one that is on the wire.
    pub fn receives_not_cancel_safe(mut self) -> Self {
        self.cancel_safe = false;
        self
    }

    /// Makes the next `times` calls of `call` (every call when `None`) fault, on every queue.
    pub fn inject(&self, call: Call, fault: Fault, times: Option<u32>) {
        self.inject_on(None, call, fault, times);
    }

    /// As [`Faulty::inject`], only on `queue`.
    pub fn inject_on(&self, queue: Option<&str>, call: Call, fault: Fault, times: Option<u32>) {
        self.rules.lock().expect("lock").push(Rule {
            call,
            queue: queue.map(str::to_owned),
            fault,
            remaining: times,
        });
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.rules.lock().expect("lock").clear();
    }

    fn take(&self, queue: &str, call: Call) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("lock");
        let i = rules.iter().position(|r| {
            r.call == call
                && r.queue.as_deref().is_none_or(|q| q == queue)
                && r.remaining != Some(0)
        })?;
        let rule = &mut rules[i];
        if let Some(n) = &mut rule.remaining {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }

    async fn apply(
        &self,
        queue: &str,
        call: Call,
        operation: &'static str,
    ) -> Result<(), BusError> {
        match self.take(queue, call) {
            None => Ok(()),
            Some(Fault::Hang(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fault::Fail { code, retryable }) => Err(BusError::Api {
                resource: queue.to_owned(),
                operation,
                code: code.to_owned(),
                message: "injected fault".to_owned(),
                retryable,
                source: None,
            }),
        }
    }
}

struct FaultyQueue {
    name: String,
    inner: QueueHandle,
    faults: Faulty,
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn receive(&self, r: &ReceiveRequest) -> Result<Vec<Message>, BusError> {
        self.faults
            .apply(&self.name, Call::Receive, "ReceiveMessage")
            .await?;
        let mut messages = self.inner.queue().receive(r).await?;
        let by = *self.faults.backdate.lock().expect("lock");
        for m in &mut messages {
            m.system.sent_at -= by;
        }
        Ok(messages)
    }
    async fn delete_batch(&self, r: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError> {
        self.faults
            .apply(&self.name, Call::Delete, "DeleteMessageBatch")
            .await?;
        self.inner.queue().delete_batch(r).await
    }
    async fn change_visibility_batch(
        &self,
        c: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError> {
        self.faults
            .apply(
                &self.name,
                Call::ChangeVisibility,
                "ChangeMessageVisibilityBatch",
            )
            .await?;
        self.inner.queue().change_visibility_batch(c).await
    }
    fn receive_is_cancel_safe(&self) -> bool {
        self.faults.cancel_safe && self.inner.queue().receive_is_cancel_safe()
    }
}

#[async_trait]
impl Sender for FaultyQueue {
    async fn send_batch(
        &self,
        m: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        self.faults
            .apply(&self.name, Call::Send, "SendMessageBatch")
            .await?;
        self.inner.sender().send_batch(m).await
    }
}

#[async_trait]
impl QueueAdmin for FaultyQueue {
    async fn describe(&self) -> Result<QueueDescription, BusError> {
        self.inner.admin().describe().await
    }
}

#[async_trait]
impl Transport for Faulty {
    async fn declare(&self, d: &Declaration<'_>) -> Result<Applied, BusError> {
        self.bus.declare(d).await
    }
    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        let inner = self.bus.queue(name).await?;
        let arn = inner.arn().to_owned();
        let q = FaultyQueue {
            name: name.to_owned(),
            inner,
            faults: self.clone(),
        };
        Ok(QueueHandle::new(name, &arn, Arc::new(q)))
    }
    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        self.bus.topic(name).await
    }
}
