//! An SQS record of a Lambda event as the [`Message`] the engine's receive gives handlers: the
//! same id, body, message attributes and system attributes (the receive count among them).

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use fleet_bus::{AttributeValue, Message, MessageAttributes, Receipt, SystemAttributes};

use crate::error::LambdaError;

/// The message of one SQS record.
///
/// # Errors
/// `Record` when the record has no `messageId` (the event is not an SQS event).
pub fn message_of(record: &SqsMessage) -> Result<Message, LambdaError> {
    let id = record
        .message_id
        .clone()
        .ok_or_else(|| LambdaError::Record("an SQS record without a messageId".to_owned()))?;
    let system = |name: &str| record.attributes.get(name).cloned();
    let millis = |name: &str| {
        system(name)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    };
    Ok(Message {
        id,
        body: record.body.clone().unwrap_or_default(),
        attributes: attributes_of(record),
        system: SystemAttributes {
            // A record is a receive: the mapping counts it like any other consumer.
            receive_count: system("ApproximateReceiveCount")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            sent_at: millis("SentTimestamp").unwrap_or(SystemTime::UNIX_EPOCH),
            first_received_at: millis("ApproximateFirstReceiveTimestamp"),
            message_group_id: system("MessageGroupId"),
            deduplication_id: system("MessageDeduplicationId"),
            sequence_number: system("SequenceNumber"),
            trace_header: system("AWSTraceHeader"),
        },
        receipt: Receipt::new(record.receipt_handle.clone().unwrap_or_default()),
    })
}

/// The queue a record came from: the last part of its `eventSourceARN`.
pub fn queue_of(record: &SqsMessage) -> Option<&str> {
    record
        .event_source_arn
        .as_deref()
        .map(fleet_bus::transport::arn_resource_name)
}

fn attributes_of(record: &SqsMessage) -> MessageAttributes {
    record
        .message_attributes
        .iter()
        .filter_map(|(name, a)| Some((name.clone(), attribute_of(a)?)))
        .collect()
}

/// One message attribute; the event carries binary values in base64, decoded by the event type.
fn attribute_of(a: &SqsMessageAttribute) -> Option<AttributeValue> {
    let data_type = a.data_type.clone().unwrap_or_else(|| "String".to_owned());
    if let Some(bytes) = &a.binary_value {
        let mut v = AttributeValue::binary(bytes.0.clone());
        v.set_data_type(data_type);
        return Some(v);
    }
    a.string_value
        .as_ref()
        .map(|s| AttributeValue::text(data_type, s.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;

    /// A FIFO record as Lambda delivers it (the shape of AWS's documented sample event).
    const FIFO_EVENT: &str = r#"{"Records":[{
        "messageId":"11d6ee51-4cc7-4302-9e22-7cd8afdaadf5",
        "receiptHandle":"AQEBBX8nesZEXmkhsmZeyIE8iQAMig7qw...",
        "body":"{\"id\":\"e-1\"}",
        "attributes":{"ApproximateReceiveCount":"3","SentTimestamp":"1573251510774",
            "SequenceNumber":"18849496460467696128","MessageGroupId":"order-1",
            "SenderId":"AIDAIO23YVJENQZJOL4VO","MessageDeduplicationId":"d-1",
            "ApproximateFirstReceiveTimestamp":"1573251510774",
            "AWSTraceHeader":"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"},
        "messageAttributes":{
            "type":{"stringValue":"order.paid","stringListValues":[],"binaryListValues":[],"dataType":"String"},
            "n":{"stringValue":"7","dataType":"Number.int"},
            "raw":{"binaryValue":"aGk=","dataType":"Binary"}},
        "md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource":"aws:sqs",
        "eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:fleet-orders.fifo",
        "awsRegion":"us-east-2"}]}"#;

    #[test]
    fn a_record_becomes_the_message_a_receive_gives() {
        let event: SqsEvent = serde_json::from_str(FIFO_EVENT).expect("an SQS event");
        let record = &event.records[0];
        let m = message_of(record).expect("a message");
        assert_eq!(m.id, "11d6ee51-4cc7-4302-9e22-7cd8afdaadf5");
        assert_eq!(m.body, r#"{"id":"e-1"}"#);
        assert_eq!(m.system.receive_count, 3);
        assert_eq!(m.system.message_group_id.as_deref(), Some("order-1"));
        assert_eq!(m.system.deduplication_id.as_deref(), Some("d-1"));
        assert_eq!(
            m.system.sequence_number.as_deref(),
            Some("18849496460467696128")
        );
        assert!(m.system.trace_header.is_some());
        assert_eq!(
            m.system.sent_at,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_573_251_510_774)
        );
        assert_eq!(m.attributes["type"].as_str(), Some("order.paid"));
        assert_eq!(m.attributes["n"].data_type(), "Number.int");
        assert_eq!(m.attributes["raw"].as_bytes(), Some(&b"hi"[..]));
        assert_eq!(queue_of(record), Some("fleet-orders.fifo"));
    }

    #[test]
    fn a_record_without_an_id_is_refused_and_a_missing_count_is_a_first_receive() {
        let event: SqsEvent =
            serde_json::from_str(r#"{"Records":[{"body":"x"}]}"#).expect("an SQS event");
        assert!(message_of(&event.records[0]).is_err());
        let event: SqsEvent = serde_json::from_str(r#"{"Records":[{"messageId":"m","body":"x"}]}"#)
            .expect("an SQS event");
        let m = message_of(&event.records[0]).expect("a message");
        assert_eq!(m.system.receive_count, 1);
    }
}
