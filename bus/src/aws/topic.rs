//! An SNS topic through `aws-sdk-sns`.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::PublishBatchRequestEntry;

use super::convert::{by_index, entry_error, to_sns_attributes};
use super::error::{build_error, sdk_error};
use crate::error::BusError;
use crate::limits::MAX_SNS_BATCH_BYTES;
use crate::message::{EntryError, EntryResult, OutgoingMessage, SendReceipt};
use crate::trace;
use crate::transport::{Publisher, single_entry};
use crate::validate;

/// An SNS topic: its name, ARN and the shared client.
#[derive(Clone, Debug)]
pub struct SnsTopic {
    client: Client,
    name: String,
    arn: String,
}

impl SnsTopic {
    pub(crate) fn new(client: Client, name: &str, arn: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
            arn: arn.to_owned(),
        }
    }

    /// The topic ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }
}

#[async_trait]
impl Publisher for SnsTopic {
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        let op = "PublishBatch";
        // SNS checks the total only on the service side; checking first gives a clear error
        // without a round trip, and the same one the embedded transport gives.
        validate::check_send_batch(&self.name, op, messages, MAX_SNS_BATCH_BYTES)?;
        let stamped = trace::stamp(messages, trace::Stamp::SNS);
        let mut entries = Vec::with_capacity(messages.len());
        let mut local_failures = Vec::new();
        for (i, m) in stamped.iter().enumerate() {
            if m.delay.is_some() {
                local_failures.push((
                    i.to_string(),
                    EntryError::sender("InvalidParameter", "topics do not accept a delivery delay"),
                ));
                continue;
            }
            let attributes =
                to_sns_attributes(&m.attributes).map_err(|e| build_error(&self.name, op, e))?;
            let entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(&m.body)
                .set_subject(m.subject.clone())
                .set_message_attributes((!attributes.is_empty()).then_some(attributes))
                .set_message_group_id(m.group_id.clone())
                .set_message_deduplication_id(m.deduplication_id.clone())
                .build()
                .map_err(|e| build_error(&self.name, op, e))?;
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(by_index(messages.len(), Vec::new(), local_failures));
        }
        let out = self
            .client
            .publish_batch()
            .topic_arn(&self.arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, op, e))?;
        let ok = out.successful().iter().filter_map(|s| {
            let receipt = SendReceipt {
                message_id: s.message_id()?.to_owned(),
                sequence_number: s.sequence_number().map(str::to_owned),
            };
            Some((s.id()?.to_owned(), receipt))
        });
        let failed = out
            .failed()
            .iter()
            .map(|f| {
                (
                    f.id().to_owned(),
                    entry_error(f.code(), f.message(), f.sender_fault()),
                )
            })
            .chain(local_failures);
        Ok(by_index(messages.len(), ok, failed))
    }

    async fn publish(&self, message: OutgoingMessage) -> Result<SendReceipt, BusError> {
        let mut results = self.publish_batch(std::slice::from_ref(&message)).await?;
        single_entry(&self.name, "Publish", results.pop())
    }
}
