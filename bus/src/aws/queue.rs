//! An SQS queue through `aws-sdk-sqs`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    QueueAttributeName as Q, SendMessageBatchRequestEntry,
};

use super::convert::{
    RECEIVED_SYSTEM_ATTRIBUTES, by_index, entry_error, from_sqs_message, seconds,
    to_sqs_attributes, to_sqs_system_attributes,
};
use super::error::{build_error, sdk_error};
use crate::error::BusError;
use crate::limits::MAX_SQS_BATCH_BYTES;
use crate::message::{
    EntryResult, Message, OutgoingMessage, Receipt, ReceiveRequest, SendReceipt, VisibilityChange,
};
use crate::trace;
use crate::transport::{Queue, QueueAdmin, QueueCounts, QueueDescription, RedrivePolicy, Sender};
use crate::validate;

/// An SQS queue: its name, URL and ARN, and the shared client.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    name: String,
    url: String,
}

impl SqsQueue {
    /// The `ReceiveMessage` call for a request: every user attribute (filters and trace context
    /// read them), and only the system attributes [`from_sqs_message`] reads.
    fn receive_call(
        &self,
        request: &ReceiveRequest,
    ) -> aws_sdk_sqs::operation::receive_message::builders::ReceiveMessageFluentBuilder {
        self.client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(request.max_messages).unwrap_or(10))
            .wait_time_seconds(seconds(request.wait_time))
            .set_visibility_timeout(request.visibility_timeout.map(seconds))
            .message_attribute_names("All")
            .set_message_system_attribute_names(Some(RECEIVED_SYSTEM_ATTRIBUTES.to_vec()))
    }

    pub(crate) fn new(client: Client, name: &str, url: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
            url: url.to_owned(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every attribute of the queue, as SQS names them.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn attributes(&self) -> Result<HashMap<Q, String>, BusError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(Q::All)
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, "GetQueueAttributes", e))?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }
}

/// Reads a redrive policy; SQS writes `maxReceiveCount` as a number, older tools as a string.
pub(crate) fn parse_redrive(json: &str) -> Option<RedrivePolicy> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let arn = v.get("deadLetterTargetArn")?.as_str()?.to_owned();
    let max = v.get("maxReceiveCount")?;
    let max = max
        .as_u64()
        .or_else(|| max.as_str().and_then(|s| s.parse().ok()))?;
    Some(RedrivePolicy {
        dead_letter_target_arn: arn,
        max_receive_count: u32::try_from(max).ok()?,
    })
}

fn secs_attr(attrs: &HashMap<Q, String>, name: &Q) -> Duration {
    // moto writes some numbers with a fraction; take the whole seconds.
    let raw = attrs.get(name).map_or("0", String::as_str);
    Duration::from_secs(
        raw.split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    )
}

fn count_attr(attrs: &HashMap<Q, String>, name: &Q) -> u64 {
    attrs.get(name).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn receive(&self, request: &ReceiveRequest) -> Result<Vec<Message>, BusError> {
        validate::check_receive(
            &self.name,
            request.max_messages,
            request.wait_time,
            request.visibility_timeout,
        )?;
        let out = self
            .receive_call(request)
            // Merged with the client's timeouts: only the attempt's is the long poll's own.
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default().timeout_config(
                    aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(super::receive_attempt_timeout(
                            request.wait_time,
                        ))
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, "ReceiveMessage", e))?;
        let mut messages = Vec::new();
        for m in out.messages() {
            match from_sqs_message(m) {
                Some(msg) => messages.push(msg),
                // Without an id or receipt nothing can settle it; SQS redelivers it after its
                // visibility timeout (and redrives it eventually), so it is not lost.
                None => {
                    tracing::error!(queue = %self.name, "SQS returned a message without id or receipt handle")
                }
            }
        }
        Ok(messages)
    }

    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<EntryResult<()>>, BusError> {
        validate::check_batch_len(&self.name, "DeleteMessageBatch", receipts.len())?;
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.as_str())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(&self.name, "DeleteMessageBatch", e))?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, "DeleteMessageBatch", e))?;
        let ok = out.successful().iter().map(|s| (s.id().to_owned(), ()));
        let failed = out.failed().iter().map(|f| {
            (
                f.id().to_owned(),
                entry_error(f.code(), f.message(), f.sender_fault()),
            )
        });
        Ok(by_index(receipts.len(), ok, failed))
    }

    async fn change_visibility_batch(
        &self,
        changes: &[VisibilityChange],
    ) -> Result<Vec<EntryResult<()>>, BusError> {
        validate::check_batch_len(&self.name, "ChangeMessageVisibilityBatch", changes.len())?;
        let entries = changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(c.receipt.as_str())
                    .visibility_timeout(seconds(c.timeout))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(&self.name, "ChangeMessageVisibilityBatch", e))?;
        let out = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, "ChangeMessageVisibilityBatch", e))?;
        let ok = out.successful().iter().map(|s| (s.id().to_owned(), ()));
        let failed = out.failed().iter().map(|f| {
            (
                f.id().to_owned(),
                entry_error(f.code(), f.message(), f.sender_fault()),
            )
        });
        Ok(by_index(changes.len(), ok, failed))
    }
}

#[async_trait]
impl Sender for SqsQueue {
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        validate::check_send_batch(
            &self.name,
            "SendMessageBatch",
            messages,
            MAX_SQS_BATCH_BYTES,
        )?;
        let stamped = trace::stamp(messages, trace::Stamp::SQS);
        let op = "SendMessageBatch";
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in stamped.iter().enumerate() {
            let attributes =
                to_sqs_attributes(&m.attributes).map_err(|e| build_error(&self.name, op, e))?;
            let system = to_sqs_system_attributes(m).map_err(|e| build_error(&self.name, op, e))?;
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .set_message_attributes((!attributes.is_empty()).then_some(attributes))
                .set_message_system_attributes(system)
                .set_delay_seconds(m.delay.map(seconds))
                .set_message_group_id(m.group_id.clone())
                .set_message_deduplication_id(m.deduplication_id.clone())
                .build()
                .map_err(|e| build_error(&self.name, op, e))?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, op, e))?;
        let ok = out.successful().iter().map(|s| {
            (
                s.id().to_owned(),
                SendReceipt {
                    message_id: s.message_id().to_owned(),
                    sequence_number: s.sequence_number().map(str::to_owned),
                },
            )
        });
        let failed = out.failed().iter().map(|f| {
            (
                f.id().to_owned(),
                entry_error(f.code(), f.message(), f.sender_fault()),
            )
        });
        Ok(by_index(messages.len(), ok, failed))
    }
}

#[async_trait]
impl QueueAdmin for SqsQueue {
    async fn describe(&self) -> Result<QueueDescription, BusError> {
        let a = self.attributes().await?;
        Ok(QueueDescription {
            name: self.name.clone(),
            arn: a.get(&Q::QueueArn).cloned().unwrap_or_default(),
            fifo: a.get(&Q::FifoQueue).is_some_and(|v| v == "true"),
            visibility_timeout: secs_attr(&a, &Q::VisibilityTimeout),
            delay: secs_attr(&a, &Q::DelaySeconds),
            retention: secs_attr(&a, &Q::MessageRetentionPeriod),
            redrive: a.get(&Q::RedrivePolicy).and_then(|p| parse_redrive(p)),
            counts: QueueCounts {
                visible: count_attr(&a, &Q::ApproximateNumberOfMessages),
                in_flight: count_attr(&a, &Q::ApproximateNumberOfMessagesNotVisible),
                delayed: count_attr(&a, &Q::ApproximateNumberOfMessagesDelayed),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageSystemAttributeName as Sys;

    #[test]
    fn a_receive_asks_for_the_system_attributes_it_reads_and_not_all() {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let queue = SqsQueue::new(Client::from_conf(config), "q", "http://q");
        let call = queue.receive_call(&ReceiveRequest {
            max_messages: 10,
            wait_time: Duration::from_secs(20),
            visibility_timeout: None,
        });
        let asked = call
            .get_message_system_attribute_names()
            .clone()
            .unwrap_or_default();
        assert!(!asked.contains(&Sys::All) && !asked.contains(&Sys::SenderId));
        for read in [
            Sys::ApproximateReceiveCount,
            Sys::SentTimestamp,
            Sys::ApproximateFirstReceiveTimestamp,
            Sys::MessageGroupId,
            Sys::MessageDeduplicationId,
            Sys::SequenceNumber,
            Sys::AwsTraceHeader,
        ] {
            assert!(asked.contains(&read), "{read:?} is read but not asked for");
        }
        assert_eq!(asked.len(), 7);
        assert_eq!(
            call.get_message_attribute_names()
                .clone()
                .unwrap_or_default(),
            ["All"]
        );
    }

    #[test]
    fn redrive_policies_in_both_spellings() {
        let p = parse_redrive(
            r#"{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:d", "maxReceiveCount": 3}"#,
        )
        .unwrap();
        assert_eq!((p.dead_letter_queue_name(), p.max_receive_count), ("d", 3));
        let p = parse_redrive(
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:d","maxReceiveCount":"5"}"#,
        )
        .unwrap();
        assert_eq!(p.max_receive_count, 5);
        assert_eq!(parse_redrive("{}"), None);
    }
}
