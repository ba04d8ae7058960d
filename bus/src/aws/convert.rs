//! Conversions between the bus's message types and the SDK's.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_sns::types as sns;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{self as sqs, MessageSystemAttributeName as Sys};

use crate::message::{
    AttributeValue, EntryError, Message, MessageAttributes, OutgoingMessage, Receipt,
    SystemAttributes,
};

/// Whole seconds for an SQS duration parameter, rounded up so a delay is never shortened.
pub(crate) fn seconds(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s).unwrap_or(i32::MAX)
}

pub(crate) fn to_sqs_attributes(
    attrs: &MessageAttributes,
) -> Result<HashMap<String, sqs::MessageAttributeValue>, aws_sdk_sqs::error::BuildError> {
    attrs
        .iter()
        .map(|(k, v)| {
            let value = sqs::MessageAttributeValue::builder()
                .data_type(v.data_type())
                .set_string_value(v.as_str().map(str::to_owned))
                .set_binary_value(v.as_bytes().map(Blob::new))
                .build()?;
            Ok((k.clone(), value))
        })
        .collect()
}

pub(crate) fn to_sns_attributes(
    attrs: &MessageAttributes,
) -> Result<HashMap<String, sns::MessageAttributeValue>, aws_sdk_sns::error::BuildError> {
    attrs
        .iter()
        .map(|(k, v)| {
            let value = sns::MessageAttributeValue::builder()
                .data_type(v.data_type())
                .set_string_value(v.as_str().map(str::to_owned))
                .set_binary_value(v.as_bytes().map(aws_sdk_sns::primitives::Blob::new))
                .build()?;
            Ok((k.clone(), value))
        })
        .collect()
}

/// The `AWSTraceHeader` system attribute of a send, if the message carries a trace header.
pub(crate) fn to_sqs_system_attributes(
    m: &OutgoingMessage,
) -> Result<
    Option<HashMap<sqs::MessageSystemAttributeNameForSends, sqs::MessageSystemAttributeValue>>,
    aws_sdk_sqs::error::BuildError,
> {
    let Some(header) = &m.trace_header else {
        return Ok(None);
    };
    let value = sqs::MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(header)
        .build()?;
    Ok(Some(HashMap::from([(
        sqs::MessageSystemAttributeNameForSends::AwsTraceHeader,
        value,
    )])))
}

fn from_sqs_attribute(v: &sqs::MessageAttributeValue) -> AttributeValue {
    match (v.string_value(), v.binary_value()) {
        (Some(s), _) => AttributeValue::text(v.data_type(), s),
        (None, Some(b)) if v.data_type() == "Binary" => AttributeValue::binary(b.as_ref().to_vec()),
        (None, Some(b)) => {
            let mut a = AttributeValue::binary(b.as_ref().to_vec());
            a.set_data_type(v.data_type());
            a
        }
        (None, None) => AttributeValue::text(v.data_type(), ""),
    }
}

fn millis(s: &str) -> Option<SystemTime> {
    s.parse::<u64>()
        .ok()
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// The system attributes a receive asks for: those [`SystemAttributes`] carries, and no more.
/// `All` would add `SenderId` and `DeadLetterQueueSourceArn` to every message of every response,
/// which nothing reads.
pub(crate) const RECEIVED_SYSTEM_ATTRIBUTES: [Sys; 7] = [
    Sys::ApproximateReceiveCount,
    Sys::SentTimestamp,
    Sys::ApproximateFirstReceiveTimestamp,
    Sys::MessageGroupId,
    Sys::MessageDeduplicationId,
    Sys::SequenceNumber,
    Sys::AwsTraceHeader,
];

/// A received SQS message, or `None` when SQS left out the id, receipt or body.
pub(crate) fn from_sqs_message(m: &sqs::Message) -> Option<Message> {
    let sys = |name: Sys| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    Some(Message {
        id: m.message_id()?.to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attributes: m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.clone(), from_sqs_attribute(v)))
                    .collect()
            })
            .unwrap_or_default(),
        system: SystemAttributes {
            receive_count: sys(Sys::ApproximateReceiveCount)
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            sent_at: sys(Sys::SentTimestamp)
                .and_then(millis)
                .unwrap_or_else(SystemTime::now),
            first_received_at: sys(Sys::ApproximateFirstReceiveTimestamp).and_then(millis),
            message_group_id: sys(Sys::MessageGroupId).map(str::to_owned),
            deduplication_id: sys(Sys::MessageDeduplicationId).map(str::to_owned),
            sequence_number: sys(Sys::SequenceNumber).map(str::to_owned),
            trace_header: sys(Sys::AwsTraceHeader).map(str::to_owned),
        },
        receipt: Receipt::new(m.receipt_handle()?),
    })
}

/// Places per-entry results (keyed by the entry id we gave: its index) back in entry order.
pub(crate) fn by_index<T>(
    n: usize,
    ok: impl IntoIterator<Item = (String, T)>,
    failed: impl IntoIterator<Item = (String, EntryError)>,
) -> Vec<Result<T, EntryError>> {
    let mut out: Vec<Option<Result<T, EntryError>>> = (0..n).map(|_| None).collect();
    for (id, v) in ok {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(Ok(v));
        }
    }
    for (id, e) in failed {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(Err(e));
        }
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(EntryError {
                    code: "MissingEntryResult".into(),
                    message: "the service returned no result for this entry".into(),
                    sender_fault: false,
                })
            })
        })
        .collect()
}

pub(crate) fn entry_error(code: &str, message: Option<&str>, sender_fault: bool) -> EntryError {
    EntryError {
        code: super::error::normalize_code(code).to_owned(),
        message: message.unwrap_or_default().to_owned(),
        sender_fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::from_secs(30)), 30);
    }

    #[test]
    fn results_go_back_in_entry_order() {
        let r = by_index(
            3,
            [("2".to_owned(), 'c'), ("0".to_owned(), 'a')],
            [(
                "1".to_owned(),
                entry_error("AWS.SimpleQueueService.X", None, true),
            )],
        );
        assert_eq!(r[0], Ok('a'));
        assert_eq!(r[1].as_ref().unwrap_err().code, "X");
        assert_eq!(r[2], Ok('c'));
        assert_eq!(
            by_index::<()>(1, [], [])[0].as_ref().unwrap_err().code,
            "MissingEntryResult"
        );
    }

    #[test]
    fn attributes_survive_the_sdk_types() {
        let mut a = MessageAttributes::new();
        a.insert("s".into(), AttributeValue::string("x"));
        a.insert("n".into(), AttributeValue::text("Number.int", "7"));
        a.insert("b".into(), AttributeValue::binary(vec![0, 255]));
        let sdk = to_sqs_attributes(&a).unwrap();
        let back: MessageAttributes = sdk
            .iter()
            .map(|(k, v)| (k.clone(), from_sqs_attribute(v)))
            .collect();
        assert_eq!(back, a);
    }
}
