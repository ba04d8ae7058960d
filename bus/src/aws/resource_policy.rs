//! Applying Fleet's resource-policy statements (`topology::policy`) to queues and topics:
//! merged by statement id into what is there, written only when they differ.

use aws_sdk_sqs::types::QueueAttributeName as Q;

use super::SqsTransport;
use super::error::sdk_error;
use super::policy::{with_queue_tls_only, with_topic_permission, with_topic_tls_only};
use crate::error::BusError;

impl SqsTransport {
    /// Makes sure the queue policy lets the topic send; true when it had to change.
    pub(crate) async fn ensure_queue_policy(
        &self,
        queue: &str,
        topic_arn: &str,
        topic: &str,
    ) -> Result<bool, BusError> {
        self.merge_queue_policy(queue, |existing, queue_arn| {
            with_topic_permission(existing, queue_arn, topic_arn, topic)
        })
        .await
    }

    /// Makes sure the queue policy refuses plain HTTP; true when it had to change.
    pub(crate) async fn ensure_tls_only_queue(&self, queue: &str) -> Result<bool, BusError> {
        self.merge_queue_policy(queue, with_queue_tls_only).await
    }

    /// Reads the queue's policy and ARN, and writes what `merge` makes of them unless it says
    /// nothing changes (`None`).
    async fn merge_queue_policy(
        &self,
        queue: &str,
        merge: impl FnOnce(Option<&str>, &str) -> Option<String>,
    ) -> Result<bool, BusError> {
        let url = self
            .queue_url(queue)
            .await?
            .ok_or_else(|| BusError::NotFound {
                kind: "queue",
                name: queue.to_owned(),
            })?;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Q::Policy)
            .attribute_names(Q::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(queue, "GetQueueAttributes", e))?;
        let attributes = out.attributes();
        let existing = attributes
            .and_then(|a| a.get(&Q::Policy))
            .map(String::as_str);
        let arn = attributes
            .and_then(|a| a.get(&Q::QueueArn))
            .ok_or_else(|| BusError::NotFound {
                kind: "queue ARN",
                name: queue.to_owned(),
            })?;
        let Some(policy) = merge(existing, arn) else {
            return Ok(false);
        };
        self.sqs()
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(Q::Policy, policy)
            .send()
            .await
            .map_err(|e| sdk_error(queue, "SetQueueAttributes", e))?;
        Ok(true)
    }

    /// Makes sure the topic policy refuses plain-HTTP publishes, keeping its other statements
    /// (SNS's default one lets the owner account manage the topic); true when it had to change.
    pub(crate) async fn ensure_tls_only_topic(
        &self,
        topic: &str,
        topic_arn: &str,
    ) -> Result<bool, BusError> {
        let out = self
            .sns()
            .get_topic_attributes()
            .topic_arn(topic_arn)
            .send()
            .await
            .map_err(|e| sdk_error(topic, "GetTopicAttributes", e))?;
        let existing = out.attributes().and_then(|a| a.get("Policy"));
        let Some(policy) = with_topic_tls_only(existing.map(String::as_str), topic_arn) else {
            return Ok(false);
        };
        self.sns()
            .set_topic_attributes()
            .topic_arn(topic_arn)
            .attribute_name("Policy")
            .attribute_value(policy)
            .send()
            .await
            .map_err(|e| sdk_error(topic, "SetTopicAttributes", e))?;
        Ok(true)
    }
}
