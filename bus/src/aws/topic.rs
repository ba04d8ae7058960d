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

/// The request header of the X-Ray trace context.
const XRAY_HEADER: &str = "X-Amzn-Trace-Id";

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
        let request = self
            .client
            .publish_batch()
            .topic_arn(&self.arn)
            .set_publish_batch_request_entries(Some(entries));
        // SNS has no per-message trace header. Inside a handler every message of the batch is
        // in the handler's trace, so the request's X-Ray header names it: a topic with active
        // tracing continues that trace (and writes it as AWSTraceHeader on SQS deliveries).
        let sent = match trace::current() {
            Some(context) => {
                let header = context.to_xray();
                request
                    .customize()
                    .mutate_request(move |r| {
                        r.headers_mut().insert(XRAY_HEADER, header.clone());
                    })
                    .send()
                    .await
            }
            None => request.send().await,
        };
        let out = sent.map_err(|e| sdk_error(&self.name, op, e))?;
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};

    use super::*;
    use crate::trace::TraceContext;

    /// A server that refuses every request (400), keeping each request's headers.
    fn refusing_server() -> (String, std::sync::mpsc::Receiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    headers.push(line.trim().to_owned());
                }
                let body = r#"{"__type":"InvalidParameter","message":"refused"}"#;
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
                let _ = tx.send(headers);
            }
        });
        (url, rx)
    }

    fn topic(url: &str) -> SnsTopic {
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("k", "s", None, None, "test"))
            .build();
        SnsTopic::new(Client::from_conf(config), "t", "arn:aws:sns:us-east-1:1:t")
    }

    fn trace_header(headers: &[String]) -> Option<String> {
        headers.iter().find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case(XRAY_HEADER)
                .then(|| value.trim().to_owned())
        })
    }

    #[tokio::test]
    async fn a_publish_in_a_handler_names_its_trace_in_the_request_header() {
        let (url, requests) = refusing_server();
        let topic = topic(&url);
        let context = TraceContext::root();
        let publish = crate::trace::scope(context, topic.publish(OutgoingMessage::new("m")));
        assert!(publish.await.is_err(), "the server refuses it");
        let headers = requests.recv().unwrap();
        assert_eq!(trace_header(&headers), Some(context.to_xray()));

        // Outside a handler each message has a root of its own: the request names none.
        assert!(topic.publish(OutgoingMessage::new("m")).await.is_err());
        assert_eq!(trace_header(&requests.recv().unwrap()), None);
    }
}
