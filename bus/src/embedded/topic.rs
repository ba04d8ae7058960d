//! An embedded topic: SNS fan-out to subscribed embedded queues.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, Weak};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::BusState;
use crate::error::BusError;
use crate::limits::{FIFO_DEDUP_WINDOW, MAX_SNS_BATCH_BYTES, MAX_SNS_MESSAGE_BYTES};
use crate::message::{EntryError, EntryResult, OutgoingMessage, SendReceipt};
use crate::sns::{FilterPolicy, SnsEnvelope};
use crate::topology::SubscriptionDecl;
use crate::trace;
use crate::transport::{Applied, Publisher, single_entry};
use crate::validate;

struct Subscription {
    decl: SubscriptionDecl,
    filter: Option<FilterPolicy>,
}

struct TopicState {
    content_based_deduplication: bool,
    subscriptions: Vec<Subscription>,
    dedup: HashMap<String, (Instant, SendReceipt)>,
    next_seq: u64,
}

/// A topic of the embedded bus.
pub struct EmbeddedTopic {
    name: String,
    arn: String,
    fifo: bool,
    state: Mutex<TopicState>,
    bus: Weak<BusState>,
}

impl EmbeddedTopic {
    pub(crate) fn new(name: &str, arn: String, content_dedup: bool, bus: Weak<BusState>) -> Self {
        Self {
            name: name.to_owned(),
            arn,
            fifo: crate::topology::is_fifo_name(name),
            state: Mutex::new(TopicState {
                content_based_deduplication: content_dedup,
                subscriptions: Vec::new(),
                dedup: HashMap::new(),
                next_seq: 1,
            }),
            bus,
        }
    }

    fn state(&self) -> MutexGuard<'_, TopicState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The topic ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub(crate) fn set_content_dedup(&self, on: bool) -> Applied {
        let mut s = self.state();
        if s.content_based_deduplication == on {
            return Applied::Unchanged;
        }
        s.content_based_deduplication = on;
        Applied::Updated(vec!["ContentBasedDeduplication".to_owned()])
    }

    /// Adds or updates the subscription of `decl.queue`.
    pub(crate) fn subscribe(&self, decl: &SubscriptionDecl) -> Result<Applied, BusError> {
        let filter = decl.parsed_filter()?;
        let mut s = self.state();
        if let Some(existing) = s
            .subscriptions
            .iter_mut()
            .find(|x| x.decl.queue == decl.queue)
        {
            let mut changed = Vec::new();
            if existing.decl.raw_delivery != decl.raw_delivery {
                changed.push("RawMessageDelivery".to_owned());
            }
            if existing.decl.filter_policy != decl.filter_policy
                || existing.decl.filter_scope != decl.filter_scope
            {
                changed.push("FilterPolicy".to_owned());
            }
            *existing = Subscription {
                decl: decl.clone(),
                filter,
            };
            return Ok(if changed.is_empty() {
                Applied::Unchanged
            } else {
                Applied::Updated(changed)
            });
        }
        s.subscriptions.push(Subscription {
            decl: decl.clone(),
            filter,
        });
        Ok(Applied::Created)
    }

    /// What SNS would say about one entry, or its deduplication id.
    fn check_entry(
        &self,
        m: &OutgoingMessage,
        content_dedup: bool,
    ) -> Result<Option<String>, EntryError> {
        let invalid = |msg: &str| Err(EntryError::sender("InvalidParameter", msg));
        if m.delay.is_some() {
            return invalid("topics do not accept a delivery delay");
        }
        if let Some(problem) = validate::entry_problem(m, MAX_SNS_MESSAGE_BYTES) {
            return Err(EntryError {
                code: "InvalidParameter".to_owned(),
                ..problem
            });
        }
        if !self.fifo {
            if m.group_id.is_some() || m.deduplication_id.is_some() {
                return invalid(
                    "MessageGroupId and MessageDeduplicationId are only for FIFO topics",
                );
            }
            return Ok(None);
        }
        if m.group_id.is_none() {
            return invalid("FIFO topics require MessageGroupId");
        }
        match (&m.deduplication_id, content_dedup) {
            (Some(id), _) => Ok(Some(id.clone())),
            (None, true) => Ok(Some(hex::encode(Sha256::digest(m.body.as_bytes())))),
            (None, false) => invalid(
                "FIFO topics without content-based deduplication require MessageDeduplicationId",
            ),
        }
    }

    fn publish_one(&self, m: &OutgoingMessage, now: Instant) -> EntryResult<SendReceipt> {
        let mut state = self.state();
        let dedup_id = self.check_entry(m, state.content_based_deduplication)?;
        state
            .dedup
            .retain(|_, (at, _)| *at + FIFO_DEDUP_WINDOW > now);
        if let Some((_, receipt)) = dedup_id.as_ref().and_then(|id| state.dedup.get(id)) {
            return Ok(receipt.clone());
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let receipt = SendReceipt {
            message_id: uuid::Uuid::new_v4().to_string(),
            sequence_number: self.fifo.then(|| format!("{seq:020}")),
        };
        if let Some(id) = &dedup_id {
            state.dedup.insert(id.clone(), (now, receipt.clone()));
        }
        let targets: Vec<(String, bool)> = state
            .subscriptions
            .iter()
            .filter(|s| {
                s.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&m.attributes, &m.body))
            })
            .map(|s| (s.decl.queue.clone(), s.decl.raw_delivery))
            .collect();
        drop(state);
        for (queue, raw) in targets {
            self.fan_out(&queue, raw, m, &receipt, dedup_id.as_deref());
        }
        Ok(receipt)
    }

    fn fan_out(
        &self,
        queue: &str,
        raw: bool,
        m: &OutgoingMessage,
        receipt: &SendReceipt,
        dedup_id: Option<&str>,
    ) {
        let Some(target) = self.bus.upgrade().and_then(|b| b.queue(queue)) else {
            tracing::error!(topic = %self.name, queue, "subscribed queue no longer exists; message not delivered to it");
            return;
        };
        let to_fifo = crate::topology::is_fifo_name(queue);
        let mut out = if raw {
            OutgoingMessage {
                body: m.body.clone(),
                attributes: m.attributes.clone(),
                ..OutgoingMessage::default()
            }
        } else {
            let mut env = SnsEnvelope::new(
                &receipt.message_id,
                &self.arn,
                &m.body,
                m.attributes.clone(),
            );
            env.subject.clone_from(&m.subject);
            env.sequence_number.clone_from(&receipt.sequence_number);
            OutgoingMessage::new(env.to_json())
        };
        if to_fifo {
            out.group_id.clone_from(&m.group_id);
            out.deduplication_id = dedup_id.map(str::to_owned);
        }
        if let Err(e) = target.deliver(&out) {
            tracing::error!(topic = %self.name, queue, error = %e, "subscribed queue refused the message");
        }
    }
}

#[async_trait]
impl Publisher for EmbeddedTopic {
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        validate::check_send_batch(&self.name, "PublishBatch", messages, MAX_SNS_BATCH_BYTES)?;
        let stamped = trace::stamp(messages, trace::Stamp::SNS);
        let now = Instant::now();
        Ok(stamped.iter().map(|m| self.publish_one(m, now)).collect())
    }

    async fn publish(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut results = self.publish_batch(std::slice::from_ref(&message)).await?;
        single_entry(&self.name, "Publish", results.pop())
    }
}
