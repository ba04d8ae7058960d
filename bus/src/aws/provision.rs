//! Applying declarations to SQS and SNS: create what is missing, change what differs, report what
//! was done. Every step compares before it writes, so a second run changes nothing.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as Q;

use super::SqsTransport;
use super::error::sdk_error;
use super::queue::parse_redrive;
use crate::error::BusError;
use crate::sns::FilterScope;
use crate::topology::{QueueDecl, SubscriptionDecl, TopicDecl};
use crate::transport::Applied;

fn flag(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

fn applied(changes: Vec<String>) -> Applied {
    if changes.is_empty() {
        Applied::Unchanged
    } else {
        Applied::Updated(changes)
    }
}

impl SqsTransport {
    async fn desired_queue_attributes(
        &self,
        decl: &QueueDecl,
    ) -> Result<HashMap<Q, String>, BusError> {
        let mut a = HashMap::new();
        a.insert(
            Q::VisibilityTimeout,
            decl.visibility_timeout_seconds.to_string(),
        );
        a.insert(Q::DelaySeconds, decl.delay_seconds.to_string());
        a.insert(
            Q::MessageRetentionPeriod,
            decl.retention_seconds.to_string(),
        );
        // One server-side encryption at a time: SQS refuses a KMS key with SSE-SQS on.
        match &decl.kms_key {
            Some(key) => {
                a.insert(Q::KmsMasterKeyId, key.clone());
                a.insert(Q::SqsManagedSseEnabled, flag(false));
            }
            None => {
                a.insert(Q::SqsManagedSseEnabled, flag(decl.encrypted));
                // Empty: no KMS key (a key set by hand is removed).
                a.insert(Q::KmsMasterKeyId, String::new());
            }
        }
        if decl.is_fifo() {
            a.insert(
                Q::ContentBasedDeduplication,
                flag(decl.content_based_deduplication),
            );
        }
        let redrive = match &decl.dead_letter {
            Some(dl) => {
                let handle = crate::transport::Transport::queue(self, &dl.queue).await?;
                serde_json::json!({ "deadLetterTargetArn": handle.arn(), "maxReceiveCount": dl.max_receive_count }).to_string()
            }
            None => String::new(),
        };
        a.insert(Q::RedrivePolicy, redrive);
        Ok(a)
    }

    pub(crate) async fn declare_queue(&self, decl: &QueueDecl) -> Result<Applied, BusError> {
        let desired = self.desired_queue_attributes(decl).await?;
        let Some(url) = self.queue_url(&decl.name).await? else {
            let mut create = desired.clone();
            create.retain(|_, v| !v.is_empty());
            if decl.is_fifo() {
                create.insert(Q::FifoQueue, flag(true));
            }
            self.sqs()
                .create_queue()
                .queue_name(&decl.name)
                .set_attributes(Some(create))
                .send()
                .await
                .map_err(|e| sdk_error(&decl.name, "CreateQueue", e))?;
            self.ensure_tls_only_queue(&decl.name).await?;
            return Ok(Applied::Created);
        };
        let actual = self.sqs_queue(&decl.name, &url).attributes().await?;
        if actual.get(&Q::FifoQueue).is_some_and(|v| v == "true") != decl.is_fifo() {
            return Err(BusError::Topology(format!(
                "queue {} exists and cannot change between FIFO and standard",
                decl.name
            )));
        }
        let mut changes: HashMap<Q, String> = HashMap::new();
        for (name, want) in &desired {
            let have = actual.get(name).map_or("", String::as_str);
            let same = match name {
                Q::RedrivePolicy => parse_redrive(have) == parse_redrive(want),
                // SQS writes some numbers with a fraction in some emulators; compare as numbers.
                Q::VisibilityTimeout | Q::DelaySeconds | Q::MessageRetentionPeriod => {
                    have.split('.').next() == Some(want.as_str())
                }
                // CloudFormation's JSON booleans reach some emulators as `True`.
                // Under a KMS key, SSE-SQS is off by definition (some emulators still say
                // true): it is sent with a key change, never compared.
                Q::SqsManagedSseEnabled if decl.kms_key.is_some() => true,
                Q::SqsManagedSseEnabled => have.eq_ignore_ascii_case("true") == (want == "true"),
                _ => have == want,
            };
            if !same {
                changes.insert(name.clone(), want.clone());
            }
        }
        let mut names: Vec<String> = changes.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        if decl.kms_key.is_some() && changes.contains_key(&Q::KmsMasterKeyId) {
            changes.insert(Q::SqsManagedSseEnabled, flag(false));
        }
        if !changes.is_empty() {
            self.set_queue_attributes(&decl.name, &url, &actual, changes)
                .await?;
        }
        if self.ensure_tls_only_queue(&decl.name).await? {
            names.push("Policy".to_owned());
        }
        Ok(applied(names))
    }

    async fn set_queue_attributes(
        &self,
        queue: &str,
        url: &str,
        actual: &HashMap<Q, String>,
        mut changes: HashMap<Q, String>,
    ) -> Result<(), BusError> {
        // Some SQS implementations drop a policy that a SetQueueAttributes call leaves out; send
        // it along unchanged.
        if let Some(policy) = actual.get(&Q::Policy) {
            changes.insert(Q::Policy, policy.clone());
        }
        self.sqs()
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(changes))
            .send()
            .await
            .map_err(|e| sdk_error(queue, "SetQueueAttributes", e))?;
        Ok(())
    }

    pub(crate) async fn declare_topic(&self, decl: &TopicDecl) -> Result<Applied, BusError> {
        let name = &decl.name;
        let Some(arn) = self.topic_arn(name).await? else {
            let arn = self.create_topic(decl).await?;
            self.ensure_tls_only_topic(name, &arn).await?;
            return Ok(Applied::Created);
        };
        let mut changes = Vec::new();
        if decl.is_fifo() && self.update_topic_deduplication(decl, &arn).await? {
            changes.push("ContentBasedDeduplication".to_owned());
        }
        if self.ensure_tls_only_topic(name, &arn).await? {
            changes.push("Policy".to_owned());
        }
        Ok(applied(changes))
    }

    /// Creates the topic; its ARN.
    async fn create_topic(&self, decl: &TopicDecl) -> Result<String, BusError> {
        let name = &decl.name;
        let mut attrs = HashMap::new();
        if decl.is_fifo() {
            attrs.insert("FifoTopic".to_owned(), flag(true));
            attrs.insert(
                "ContentBasedDeduplication".to_owned(),
                flag(decl.content_based_deduplication),
            );
        }
        let out = self
            .sns()
            .create_topic()
            .name(name)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| sdk_error(name, "CreateTopic", e))?;
        let arn = out.topic_arn().ok_or_else(|| BusError::NotFound {
            kind: "topic ARN",
            name: name.clone(),
        })?;
        self.remember_topic(name, arn);
        Ok(arn.to_owned())
    }

    /// Brings a FIFO topic's content-based deduplication to its declaration; true when it changed.
    async fn update_topic_deduplication(
        &self,
        decl: &TopicDecl,
        arn: &str,
    ) -> Result<bool, BusError> {
        let name = &decl.name;
        let out = self
            .sns()
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error(name, "GetTopicAttributes", e))?;
        let have = out
            .attributes()
            .and_then(|a| a.get("ContentBasedDeduplication"))
            .is_some_and(|v| v == "true");
        if have == decl.content_based_deduplication {
            return Ok(false);
        }
        self.sns()
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name("ContentBasedDeduplication")
            .attribute_value(flag(decl.content_based_deduplication))
            .send()
            .await
            .map_err(|e| sdk_error(name, "SetTopicAttributes", e))?;
        Ok(true)
    }

    pub(crate) async fn declare_subscription(
        &self,
        topic: &str,
        sub: &SubscriptionDecl,
    ) -> Result<Applied, BusError> {
        sub.parsed_filter()?;
        let topic_arn = self
            .topic_arn(topic)
            .await?
            .ok_or_else(|| BusError::NotFound {
                kind: "topic",
                name: topic.to_owned(),
            })?;
        let queue = crate::transport::Transport::queue(self, &sub.queue).await?;
        let label = format!("{topic} -> {}", sub.queue);
        let existing = self
            .find_subscription(&topic_arn, queue.arn(), &label)
            .await?;
        let mut changes = match existing {
            None => {
                let mut attrs =
                    HashMap::from([("RawMessageDelivery".to_owned(), flag(sub.raw_delivery))]);
                if let Some(policy) = &sub.filter_policy {
                    attrs.insert("FilterPolicy".to_owned(), policy.to_string());
                    attrs.insert(
                        "FilterPolicyScope".to_owned(),
                        scope_name(sub.filter_scope).to_owned(),
                    );
                }
                self.sns()
                    .subscribe()
                    .topic_arn(&topic_arn)
                    .protocol("sqs")
                    .endpoint(queue.arn())
                    .set_attributes(Some(attrs))
                    .return_subscription_arn(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&label, "Subscribe", e))?;
                None
            }
            Some(arn) => Some(self.update_subscription(&arn, sub, &label).await?),
        };
        let policy_changed = self
            .ensure_queue_policy(&sub.queue, &topic_arn, topic)
            .await?;
        match (&mut changes, policy_changed) {
            (None, _) => Ok(Applied::Created),
            (Some(c), true) => {
                c.push("QueuePolicy".to_owned());
                Ok(applied(std::mem::take(c)))
            }
            (Some(c), false) => Ok(applied(std::mem::take(c))),
        }
    }

    async fn find_subscription(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        label: &str,
    ) -> Result<Option<String>, BusError> {
        let mut token = None;
        loop {
            let out = self
                .sns()
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(label, "ListSubscriptionsByTopic", e))?;
            let found = out
                .subscriptions()
                .iter()
                .find(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue_arn));
            if let Some(arn) = found.and_then(|s| s.subscription_arn()) {
                return Ok(Some(arn.to_owned()));
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(None),
            }
        }
    }

    async fn update_subscription(
        &self,
        arn: &str,
        sub: &SubscriptionDecl,
        label: &str,
    ) -> Result<Vec<String>, BusError> {
        let out = self
            .sns()
            .get_subscription_attributes()
            .subscription_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error(label, "GetSubscriptionAttributes", e))?;
        let have = out.attributes().cloned().unwrap_or_default();
        let have_policy: Option<serde_json::Value> = have
            .get("FilterPolicy")
            .filter(|p| !p.is_empty())
            .and_then(|p| serde_json::from_str(p).ok());
        let have_scope = have
            .get("FilterPolicyScope")
            .map_or("MessageAttributes", String::as_str);
        let mut set: Vec<(&str, String)> = Vec::new();
        if have.get("RawMessageDelivery").is_some_and(|v| v == "true") != sub.raw_delivery {
            set.push(("RawMessageDelivery", flag(sub.raw_delivery)));
        }
        let scope_differs =
            sub.filter_policy.is_some() && have_scope != scope_name(sub.filter_scope);
        if scope_differs {
            set.push(("FilterPolicyScope", scope_name(sub.filter_scope).to_owned()));
        }
        // The policy goes after its scope: a matcher is rebuilt when the policy is set.
        if have_policy != sub.filter_policy || scope_differs {
            set.push((
                "FilterPolicy",
                sub.filter_policy
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
        }
        for (name, value) in &set {
            self.sns()
                .set_subscription_attributes()
                .subscription_arn(arn)
                .attribute_name(*name)
                .attribute_value(value)
                .send()
                .await
                .map_err(|e| sdk_error(label, "SetSubscriptionAttributes", e))?;
        }
        Ok(set.into_iter().map(|(n, _)| n.to_owned()).collect())
    }
}

fn scope_name(scope: FilterScope) -> &'static str {
    match scope {
        FilterScope::MessageAttributes => "MessageAttributes",
        FilterScope::MessageBody => "MessageBody",
    }
}
