//! The embedded transport: queues and topics with SQS and SNS semantics, in process.
//!
//! Time is tokio's clock, so tests on a paused clock see visibility timeouts, delays and
//! retention pass without waiting.
//!
//! Where it is stricter or tidier than SQS, on purpose or by nature:
//! - a delete or visibility change with a stale receipt (the message was received again since)
//!   is refused with `ReceiptHandleIsInvalid`; SQS accepts such a delete and may or may not
//!   delete the message;
//! - standard queues hand out messages oldest first, in full batches, and never twice within a
//!   visibility timeout; SQS may return fewer, out of order, or (rarely) a duplicate.
//!
//! Code that relies on either would pass here and fail on SQS; the consumer engine relies on
//! neither, and the scenario suite runs on both.

mod messages;
mod queue;
mod store;
mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

pub use queue::{ApiCalls, EmbeddedQueue};
pub use topic::EmbeddedTopic;

use crate::error::BusError;
use crate::topology::{Declaration, ProvisionReport, QueueDecl, Topology};
use crate::transport::{Applied, Publisher, QueueHandle, Transport};
use store::Settings;

const REGION: &str = "embedded";
const ACCOUNT: &str = "000000000000";

pub(crate) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

static NEXT_QUEUE_UID: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub(crate) struct BusState {
    queues: Mutex<HashMap<String, Arc<EmbeddedQueue>>>,
    topics: Mutex<HashMap<String, Arc<EmbeddedTopic>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BusState {
    pub(crate) fn queue(&self, name: &str) -> Option<Arc<EmbeddedQueue>> {
        lock(&self.queues).get(name).cloned()
    }

    fn topic(&self, name: &str) -> Option<Arc<EmbeddedTopic>> {
        lock(&self.topics).get(name).cloned()
    }
}

/// An in-process message bus with SQS and SNS semantics. Cloning shares the same bus.
#[derive(Clone, Default)]
pub struct EmbeddedBus {
    state: Arc<BusState>,
}

impl std::fmt::Debug for EmbeddedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus").finish_non_exhaustive()
    }
}

impl EmbeddedBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares everything in a topology (see [`crate::provision`]).
    ///
    /// # Errors
    /// When the topology is invalid.
    pub async fn provision(&self, topology: &Topology) -> Result<ProvisionReport, BusError> {
        crate::topology::provision(self, topology).await
    }

    /// The embedded queue itself, for its API call counts and `purge`.
    pub fn embedded_queue(&self, name: &str) -> Option<Arc<EmbeddedQueue>> {
        self.state.queue(name)
    }

    fn settings_of(&self, decl: &QueueDecl) -> Result<Settings, BusError> {
        let redrive = match &decl.dead_letter {
            None => None,
            Some(dl) => {
                if self.state.queue(&dl.queue).is_none() {
                    return Err(BusError::NotFound {
                        kind: "queue",
                        name: dl.queue.clone(),
                    });
                }
                Some((dl.queue.clone(), dl.max_receive_count))
            }
        };
        Ok(Settings {
            fifo: decl.is_fifo(),
            visibility_timeout: decl.visibility_timeout_duration(),
            delay: Duration::from_secs(decl.delay_seconds.into()),
            retention: Duration::from_secs(decl.retention_seconds.into()),
            content_based_deduplication: decl.content_based_deduplication,
            redrive,
        })
    }

    fn declare_queue(&self, decl: &QueueDecl) -> Result<Applied, BusError> {
        let single = Topology {
            queues: vec![decl.clone()],
            topics: vec![],
            ..Default::default()
        };
        // Validate the queue alone; its dead-letter queue must already exist on the bus.
        single.validate()?;
        let settings = self.settings_of(decl)?;
        let mut queues = lock(&self.state.queues);
        if let Some(q) = queues.get(&decl.name) {
            let old = q.settings();
            let changed = settings_diff(&old, &settings);
            if old.fifo != settings.fifo {
                return Err(BusError::Topology(format!(
                    "queue {} cannot change between FIFO and standard",
                    decl.name
                )));
            }
            q.set_settings(settings);
            return Ok(if changed.is_empty() {
                Applied::Unchanged
            } else {
                Applied::Updated(changed)
            });
        }
        let uid = NEXT_QUEUE_UID.fetch_add(1, Ordering::Relaxed);
        let q = EmbeddedQueue::new(
            uid,
            &decl.name,
            queue_arn(&decl.name),
            settings,
            Arc::downgrade(&self.state),
        );
        queues.insert(decl.name.clone(), Arc::new(q));
        Ok(Applied::Created)
    }
}

fn settings_diff(old: &Settings, new: &Settings) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |differs: bool, name: &str| {
        if differs {
            changed.push(name.to_owned());
        }
    };
    check(
        old.visibility_timeout != new.visibility_timeout,
        "VisibilityTimeout",
    );
    check(old.delay != new.delay, "DelaySeconds");
    check(old.retention != new.retention, "MessageRetentionPeriod");
    check(
        old.content_based_deduplication != new.content_based_deduplication,
        "ContentBasedDeduplication",
    );
    check(old.redrive != new.redrive, "RedrivePolicy");
    changed
}

#[async_trait]
impl Transport for EmbeddedBus {
    async fn declare(&self, declaration: &Declaration<'_>) -> Result<Applied, BusError> {
        match declaration {
            Declaration::Queue(q) => self.declare_queue(q),
            Declaration::Topic(t) => {
                crate::topology::validate_topic_name(&t.name)?;
                let mut topics = lock(&self.state.topics);
                if let Some(existing) = topics.get(&t.name) {
                    return Ok(existing.set_content_dedup(t.content_based_deduplication));
                }
                let topic = EmbeddedTopic::new(
                    &t.name,
                    topic_arn(&t.name),
                    t.content_based_deduplication,
                    Arc::downgrade(&self.state),
                );
                topics.insert(t.name.clone(), Arc::new(topic));
                Ok(Applied::Created)
            }
            Declaration::Subscription {
                topic,
                subscription,
            } => {
                let t = self.state.topic(topic).ok_or_else(|| BusError::NotFound {
                    kind: "topic",
                    name: (*topic).to_owned(),
                })?;
                if self.state.queue(&subscription.queue).is_none() {
                    return Err(BusError::NotFound {
                        kind: "queue",
                        name: subscription.queue.clone(),
                    });
                }
                t.subscribe(subscription)
            }
        }
    }

    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        let q = self.state.queue(name).ok_or_else(|| BusError::NotFound {
            kind: "queue",
            name: name.to_owned(),
        })?;
        let arn = q.arn().to_owned();
        Ok(QueueHandle::new(name, &arn, q))
    }

    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        let t = self.state.topic(name).ok_or_else(|| BusError::NotFound {
            kind: "topic",
            name: name.to_owned(),
        })?;
        Ok(t)
    }
}
