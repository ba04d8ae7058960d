//! The declaration of queues, topics and subscriptions: one source of truth, read from a TOML file,
//! applied to any transport by [`provision`].

mod consumer_needs;
pub mod policy;
mod provision;
mod table;

pub use provision::{ProvisionReport, provision};
pub use table::{Billing, IndexDecl, Projection, TableDecl};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::BusError;
use crate::limits::{
    DEFAULT_RETENTION, DEFAULT_VISIBILITY_TIMEOUT, FIFO_SUFFIX, MAX_DELAY, MAX_QUEUE_NAME_LEN,
    MAX_RECEIVE_COUNT_LIMIT, MAX_RETENTION, MAX_TOPIC_NAME_LEN, MAX_VISIBILITY_TIMEOUT,
    MIN_RETENTION,
};
use crate::sns::{FilterPolicy, FilterScope};

/// Queues and topics as an operator declares them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The queues, dead-letter queues included (a dead-letter queue that is named but not
    /// declared is created with 14 days of retention).
    #[serde(default, rename = "queue")]
    pub queues: Vec<QueueDecl>,
    /// The topics with their subscriptions.
    #[serde(default, rename = "topic")]
    pub topics: Vec<TopicDecl>,
    /// The DynamoDB tables the workers use (applied by `fleet provision`, not by [`provision`],
    /// which needs only a message transport).
    #[serde(default, rename = "table")]
    pub tables: Vec<TableDecl>,
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDecl {
    /// Queue name; a name ending in `.fifo` declares a FIFO queue.
    pub name: String,
    /// Default visibility timeout in seconds.
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: u32,
    /// Default delivery delay in seconds.
    #[serde(default)]
    pub delay_seconds: u32,
    /// Retention in seconds.
    #[serde(default = "default_retention")]
    pub retention_seconds: u32,
    /// FIFO only: deduplicate by a SHA-256 of the body when no deduplication id is given.
    #[serde(default)]
    pub content_based_deduplication: bool,
    /// Server-side encryption with SQS-managed keys (on unless turned off); ignored when
    /// `kms_key` is set.
    #[serde(default = "default_true")]
    pub encrypted: bool,
    /// Server-side encryption with this existing KMS key instead (a key id, key ARN, alias name
    /// `alias/...` or alias ARN). Its key policy must let `sns.amazonaws.com` use it
    /// (`kms:GenerateDataKey*`, `kms:Decrypt`) for the topics that deliver to the queue: SNS
    /// cannot use the AWS-managed `aws/sqs` key, so a queue on it receives nothing from a topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// Where messages go after too many receives.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterDecl>,
}

/// A queue's redrive target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterDecl {
    /// The dead-letter queue's name.
    pub queue: String,
    /// Receives after which a message moves there (1 to 1,000).
    pub max_receive_count: u32,
}

/// One topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicDecl {
    /// Topic name; a name ending in `.fifo` declares a FIFO topic.
    pub name: String,
    /// FIFO only: deduplicate by a SHA-256 of the body when no deduplication id is given.
    #[serde(default)]
    pub content_based_deduplication: bool,
    /// Queues subscribed to the topic.
    #[serde(default, rename = "subscription")]
    pub subscriptions: Vec<SubscriptionDecl>,
}

/// One queue subscribed to a topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDecl {
    /// The subscribed queue's name.
    pub queue: String,
    /// Deliver the published body as is (true) or inside the SNS JSON envelope (false).
    #[serde(default)]
    pub raw_delivery: bool,
    /// The SNS filter policy, as a table (it becomes the policy's JSON).
    #[serde(default)]
    pub filter_policy: Option<serde_json::Value>,
    /// Whether the policy applies to message attributes or to the body.
    #[serde(default)]
    pub filter_scope: FilterScope,
}

/// One resource to create or update.
#[derive(Clone, Copy, Debug)]
pub enum Declaration<'a> {
    /// A queue (its dead-letter queue must already exist).
    Queue(&'a QueueDecl),
    /// A topic, without its subscriptions.
    Topic(&'a TopicDecl),
    /// A subscription of a queue to a topic, with the queue policy that lets the topic send.
    Subscription {
        /// The topic's name.
        topic: &'a str,
        /// The subscription.
        subscription: &'a SubscriptionDecl,
    },
}

impl Declaration<'_> {
    /// How a report names this resource: `queue orders`, `subscription events -> orders`.
    pub fn label(&self) -> String {
        match self {
            Declaration::Queue(q) => format!("queue {}", q.name),
            Declaration::Topic(t) => format!("topic {}", t.name),
            Declaration::Subscription {
                topic,
                subscription,
            } => format!("subscription {topic} -> {}", subscription.queue),
        }
    }
}

fn default_visibility() -> u32 {
    secs(DEFAULT_VISIBILITY_TIMEOUT)
}
fn default_retention() -> u32 {
    secs(DEFAULT_RETENTION)
}
fn default_true() -> bool {
    true
}
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Whether a queue or topic name declares a FIFO resource.
pub fn is_fifo_name(name: &str) -> bool {
    name.ends_with(FIFO_SUFFIX)
}

impl QueueDecl {
    /// A queue with SQS's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            visibility_timeout_seconds: default_visibility(),
            delay_seconds: 0,
            retention_seconds: default_retention(),
            content_based_deduplication: false,
            encrypted: true,
            kms_key: None,
            dead_letter: None,
        }
    }

    /// Encrypts the queue with an existing KMS key instead of SQS-managed keys.
    #[must_use]
    pub fn kms_key(mut self, key: impl Into<String>) -> Self {
        self.kms_key = Some(key.into());
        self
    }

    /// Sets the default visibility timeout (whole seconds, as SQS stores it).
    #[must_use]
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout_seconds = secs(timeout);
        self
    }

    /// Sets the default delivery delay (whole seconds).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_seconds = secs(delay);
        self
    }

    /// Sets the retention period (whole seconds).
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention_seconds = secs(retention);
        self
    }

    /// Turns content-based deduplication on (FIFO only).
    #[must_use]
    pub fn content_based_deduplication(mut self) -> Self {
        self.content_based_deduplication = true;
        self
    }

    /// Sets the redrive policy.
    #[must_use]
    pub fn dead_letter(mut self, queue: impl Into<String>, max_receive_count: u32) -> Self {
        self.dead_letter = Some(DeadLetterDecl {
            queue: queue.into(),
            max_receive_count,
        });
        self
    }

    /// Whether this is a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        is_fifo_name(&self.name)
    }

    /// Default visibility timeout.
    pub fn visibility_timeout_duration(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_seconds.into())
    }

    fn validate(&self) -> Result<(), String> {
        validate_name(&self.name, MAX_QUEUE_NAME_LEN)?;
        let n = &self.name;
        if u64::from(self.visibility_timeout_seconds) > MAX_VISIBILITY_TIMEOUT.as_secs() {
            return Err(format!("queue {n}: visibility timeout exceeds 12 hours"));
        }
        if u64::from(self.delay_seconds) > MAX_DELAY.as_secs() {
            return Err(format!("queue {n}: delay exceeds 15 minutes"));
        }
        let retention = u64::from(self.retention_seconds);
        if retention < MIN_RETENTION.as_secs() || retention > MAX_RETENTION.as_secs() {
            return Err(format!(
                "queue {n}: retention must be between 60 seconds and 14 days"
            ));
        }
        if self.kms_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(format!(
                "queue {n}: kms_key is empty (leave it out for SSE-SQS)"
            ));
        }
        if self.content_based_deduplication && !self.is_fifo() {
            return Err(format!(
                "queue {n}: content-based deduplication needs a FIFO queue"
            ));
        }
        if let Some(dl) = &self.dead_letter {
            if !(1..=MAX_RECEIVE_COUNT_LIMIT).contains(&dl.max_receive_count) {
                return Err(format!("queue {n}: max_receive_count must be 1 to 1000"));
            }
            if is_fifo_name(&dl.queue) != self.is_fifo() {
                return Err(format!(
                    "queue {n}: its dead-letter queue {} must be of the same kind (FIFO or standard)",
                    dl.queue
                ));
            }
            if dl.queue == *n {
                return Err(format!("queue {n}: cannot be its own dead-letter queue"));
            }
        }
        Ok(())
    }
}

impl TopicDecl {
    /// A topic without subscriptions.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            content_based_deduplication: false,
            subscriptions: Vec::new(),
        }
    }

    /// Adds a subscription.
    #[must_use]
    pub fn subscribe(mut self, subscription: SubscriptionDecl) -> Self {
        self.subscriptions.push(subscription);
        self
    }

    /// Whether this is a FIFO topic.
    pub fn is_fifo(&self) -> bool {
        is_fifo_name(&self.name)
    }
}

impl SubscriptionDecl {
    /// An enveloped subscription without a filter.
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            raw_delivery: false,
            filter_policy: None,
            filter_scope: FilterScope::MessageAttributes,
        }
    }

    /// Delivers the body as published, attributes as SQS message attributes.
    #[must_use]
    pub fn raw(mut self) -> Self {
        self.raw_delivery = true;
        self
    }

    /// Sets a filter policy and its scope.
    #[must_use]
    pub fn filter(mut self, policy: serde_json::Value, scope: FilterScope) -> Self {
        self.filter_policy = Some(policy);
        self.filter_scope = scope;
        self
    }

    /// The filter policy, parsed and validated.
    ///
    /// # Errors
    /// When SNS would refuse the policy.
    pub fn parsed_filter(&self) -> Result<Option<FilterPolicy>, BusError> {
        match &self.filter_policy {
            None => Ok(None),
            Some(v) => Ok(Some(FilterPolicy::parse(
                &v.to_string(),
                self.filter_scope,
            )?)),
        }
    }
}

/// Checks a topic name the way SNS does.
///
/// # Errors
/// `Topology` when the name is invalid.
pub fn validate_topic_name(name: &str) -> Result<(), BusError> {
    validate_name(name, MAX_TOPIC_NAME_LEN).map_err(BusError::Topology)
}

fn validate_name(name: &str, max_len: usize) -> Result<(), String> {
    let stem = name.strip_suffix(FIFO_SUFFIX).unwrap_or(name);
    let ok_chars = stem
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if stem.is_empty() || !ok_chars || name.len() > max_len {
        return Err(format!(
            "{name:?} is not a valid name: use 1 to {max_len} of A-Z a-z 0-9 - _ (and the .fifo suffix)"
        ));
    }
    Ok(())
}

impl Topology {
    /// Reads and validates a topology file.
    ///
    /// # Errors
    /// When the file cannot be read, parsed or validated.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BusError> {
        let path = path.as_ref();
        let file_err = |e: Box<dyn std::error::Error + Send + Sync>| BusError::TopologyFile {
            path: path.display().to_string(),
            source: e,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.into()))?;
        Self::from_toml(&text).map_err(|e| match e {
            BusError::TopologyFile { source, .. } => file_err(source),
            other => other,
        })
    }

    /// Parses and validates a topology from TOML text.
    ///
    /// # Errors
    /// When the text cannot be parsed or validated.
    pub fn from_toml(text: &str) -> Result<Self, BusError> {
        let topology: Topology = toml::from_str(text).map_err(|e| BusError::TopologyFile {
            path: "<inline>".to_owned(),
            source: e.into(),
        })?;
        topology.validate()?;
        Ok(topology)
    }

    /// Checks names, limits and references the way SQS and SNS would.
    ///
    /// # Errors
    /// `Topology` with the first problem found.
    pub fn validate(&self) -> Result<(), BusError> {
        let mut names = BTreeSet::new();
        for q in &self.queues {
            q.validate().map_err(BusError::Topology)?;
            if !names.insert(q.name.as_str()) {
                return Err(BusError::Topology(format!(
                    "queue {} declared twice",
                    q.name
                )));
            }
        }
        let mut tables = BTreeSet::new();
        for t in &self.tables {
            t.validate().map_err(BusError::Topology)?;
            if !tables.insert(t.name.as_str()) {
                return Err(BusError::Topology(format!(
                    "table {} declared twice",
                    t.name
                )));
            }
        }
        let mut topics = BTreeSet::new();
        for t in &self.topics {
            validate_name(&t.name, MAX_TOPIC_NAME_LEN).map_err(BusError::Topology)?;
            if !topics.insert(t.name.as_str()) {
                return Err(BusError::Topology(format!(
                    "topic {} declared twice",
                    t.name
                )));
            }
            for s in &t.subscriptions {
                self.validate_subscription(t, s)?;
            }
        }
        Ok(())
    }

    fn validate_subscription(&self, t: &TopicDecl, s: &SubscriptionDecl) -> Result<(), BusError> {
        if !self.queues.iter().any(|q| q.name == s.queue) {
            return Err(BusError::Topology(format!(
                "topic {} subscribes queue {}, which is not declared",
                t.name, s.queue
            )));
        }
        if is_fifo_name(&s.queue) && !t.is_fifo() {
            return Err(BusError::Topology(format!(
                "FIFO queue {} cannot subscribe to standard topic {}",
                s.queue, t.name
            )));
        }
        s.parsed_filter()?;
        Ok(())
    }

    /// The declared queues plus the dead-letter queues they name but nobody declared, which get
    /// 14 days of retention so a dead letter outlives the message's original retention, and the
    /// KMS key of the first queue that redrives into them (a dead letter stays under the key
    /// that protected the message).
    pub fn with_implicit_dead_letter_queues(&self) -> Topology {
        let mut out = self.clone();
        let declared: BTreeSet<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
        let mut implicit = BTreeMap::new();
        for q in &self.queues {
            if let Some(dl) = &q.dead_letter
                && !declared.contains(dl.queue.as_str())
            {
                implicit
                    .entry(dl.queue.clone())
                    .or_insert_with(|| QueueDecl {
                        kms_key: q.kms_key.clone(),
                        ..QueueDecl::new(&dl.queue).retention(MAX_RETENTION)
                    });
            }
        }
        out.queues.extend(implicit.into_values());
        out
    }

    /// The queue declarations ordered so that every dead-letter queue precedes the queues that
    /// redrive into it.
    ///
    /// # Errors
    /// When redrive targets form a cycle.
    pub fn queues_in_dependency_order(&self) -> Result<Vec<&QueueDecl>, BusError> {
        let mut ordered: Vec<&QueueDecl> = Vec::new();
        let mut placed = BTreeSet::new();
        while ordered.len() < self.queues.len() {
            let before = ordered.len();
            for q in &self.queues {
                let ready = match &q.dead_letter {
                    None => true,
                    Some(dl) => {
                        placed.contains(dl.queue.as_str())
                            || !self.queues.iter().any(|o| o.name == dl.queue)
                    }
                };
                if ready && !placed.contains(q.name.as_str()) {
                    placed.insert(q.name.as_str());
                    ordered.push(q);
                }
            }
            if ordered.len() == before {
                return Err(BusError::Topology(
                    "dead-letter queues redrive into each other in a cycle".to_owned(),
                ));
            }
        }
        Ok(ordered)
    }

    /// Finds a queue declaration by name.
    pub fn queue(&self, name: &str) -> Option<&QueueDecl> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// The declared table with this name.
    pub fn table(&self, name: &str) -> Option<&TableDecl> {
        self.tables.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests;
