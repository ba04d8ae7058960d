//! Request checks that SQS and SNS apply, shared by the embedded transport (which enforces them
//! as the services do) and the AWS transport (which checks sizes before sending).

use std::collections::HashSet;
use std::time::Duration;

use crate::error::BusError;
use crate::limits::{MAX_BATCH_ENTRIES, MAX_DELAY, MAX_FIFO_ID_LEN, MAX_MESSAGE_ATTRIBUTES};
use crate::message::{EntryError, MessageAttributes, OutgoingMessage};

/// Rejects an empty batch or one with more than 10 entries, as SQS and SNS do for the whole call.
///
/// # Errors
/// `EmptyBatchRequest` or `TooManyEntriesInBatchRequest`.
pub fn check_batch_len(resource: &str, operation: &'static str, n: usize) -> Result<(), BusError> {
    if n == 0 {
        return Err(BusError::invalid(
            resource,
            operation,
            "EmptyBatchRequest",
            "there should be at least one entry in the request",
        ));
    }
    if n > MAX_BATCH_ENTRIES {
        return Err(BusError::invalid(
            resource,
            operation,
            "TooManyEntriesInBatchRequest",
            format!("{n} entries; the maximum is {MAX_BATCH_ENTRIES}"),
        ));
    }
    Ok(())
}

/// Rejects a send or publish batch that is too long as a whole.
///
/// # Errors
/// `EmptyBatchRequest`, `TooManyEntriesInBatchRequest` or `BatchRequestTooLong`.
pub fn check_send_batch(
    resource: &str,
    operation: &'static str,
    messages: &[OutgoingMessage],
    max_batch_bytes: usize,
) -> Result<(), BusError> {
    check_batch_len(resource, operation, messages.len())?;
    let total: usize = messages.iter().map(OutgoingMessage::size).sum();
    if total > max_batch_bytes {
        return Err(BusError::invalid(
            resource,
            operation,
            "BatchRequestTooLong",
            format!("batch payload is {total} bytes; the maximum is {max_batch_bytes}"),
        ));
    }
    Ok(())
}

/// Rejects duplicate entries of a batch the way SQS rejects duplicate entry ids.
///
/// # Errors
/// `BatchEntryIdsNotDistinct`.
pub fn check_distinct<'a>(
    resource: &str,
    operation: &'static str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), BusError> {
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(BusError::invalid(
                resource,
                operation,
                "BatchEntryIdsNotDistinct",
                "two entries of the batch are the same",
            ));
        }
    }
    Ok(())
}

/// Whether every character of a body is one SQS accepts (XML 1.0 characters).
pub fn body_is_valid(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    })
}

/// What SQS would say about one entry of a send, before queue-specific (FIFO) checks.
pub fn entry_problem(message: &OutgoingMessage, max_message_bytes: usize) -> Option<EntryError> {
    let invalid = |m: String| Some(EntryError::sender("InvalidParameterValue", m));
    if message.body.is_empty() {
        return Some(EntryError::sender(
            "MissingParameter",
            "the request must contain the parameter MessageBody",
        ));
    }
    if !body_is_valid(&message.body) {
        return Some(EntryError::sender(
            "InvalidMessageContents",
            "the message contains characters outside the allowed set",
        ));
    }
    let size = message.size();
    if size > max_message_bytes {
        return invalid(format!(
            "message is {size} bytes; the maximum is {max_message_bytes}"
        ));
    }
    if let Some(d) = message.delay
        && d > MAX_DELAY
    {
        return invalid("DelaySeconds must be at most 900".to_owned());
    }
    for id in [&message.group_id, &message.deduplication_id]
        .into_iter()
        .flatten()
    {
        if id.is_empty() || id.len() > MAX_FIFO_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic())
        {
            return invalid(format!("{id:?} is not a valid group or deduplication id"));
        }
    }
    attributes_problem(&message.attributes).map(|m| EntryError::sender("InvalidParameterValue", m))
}

/// What is wrong with a set of message attributes, if anything.
pub fn attributes_problem(attributes: &MessageAttributes) -> Option<String> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Some(format!(
            "{} message attributes; the maximum is {MAX_MESSAGE_ATTRIBUTES}",
            attributes.len()
        ));
    }
    for (name, value) in attributes {
        if !attribute_name_is_valid(name) {
            return Some(format!("message attribute name {name:?} is invalid"));
        }
        let base = value.base_type();
        if !matches!(base, "String" | "Number" | "Binary" | "String.Array") {
            return Some(format!(
                "message attribute {name} has unknown type {}",
                value.data_type()
            ));
        }
        let empty = value.as_str().is_none_or(str::is_empty)
            && value.as_bytes().is_none_or(<[u8]>::is_empty);
        if empty {
            return Some(format!("message attribute {name} has an empty value"));
        }
        if base == "Number"
            && value
                .as_str()
                .is_none_or(|s| s.trim().parse::<f64>().is_err())
        {
            return Some(format!("message attribute {name} is not a number"));
        }
    }
    None
}

fn attribute_name_is_valid(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// Rejects a receive the way SQS does.
///
/// # Errors
/// `InvalidParameterValue` for a count outside 1 to 10, a wait over 20 seconds or a visibility
/// timeout over 12 hours.
pub fn check_receive(
    resource: &str,
    max_messages: usize,
    wait: Duration,
    visibility: Option<Duration>,
) -> Result<(), BusError> {
    let problem = if !(1..=crate::limits::MAX_RECEIVE_MESSAGES).contains(&max_messages) {
        Some("MaxNumberOfMessages must be between 1 and 10")
    } else if wait > crate::limits::MAX_WAIT_TIME {
        Some("WaitTimeSeconds must be at most 20")
    } else if visibility.is_some_and(|v| v > crate::limits::MAX_VISIBILITY_TIMEOUT) {
        Some("VisibilityTimeout must be at most 43200")
    } else {
        None
    };
    match problem {
        Some(p) => Err(BusError::invalid(
            resource,
            "ReceiveMessage",
            "InvalidParameterValue",
            p,
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AttributeValue;

    #[test]
    fn body_characters_follow_sqs() {
        assert!(body_is_valid("hello\tworld\n\r ü 😀"));
        assert!(!body_is_valid("nul\u{0}"));
        assert!(!body_is_valid("bell\u{7}"));
        assert!(!body_is_valid("\u{FFFF}"));
    }

    #[test]
    fn attribute_rules() {
        let mut a = MessageAttributes::new();
        a.insert("ok.name-1_x".into(), AttributeValue::string("v"));
        assert_eq!(attributes_problem(&a), None);
        for bad in ["AWS.x", "amazon.y", ".a", "a.", "a..b", "sp ace", ""] {
            let mut a = MessageAttributes::new();
            a.insert(bad.into(), AttributeValue::string("v"));
            assert!(attributes_problem(&a).is_some(), "{bad}");
        }
        let mut a = MessageAttributes::new();
        a.insert("n".into(), AttributeValue::text("Number.int", "x1"));
        assert!(attributes_problem(&a).is_some());
        let mut a = MessageAttributes::new();
        for i in 0..11 {
            a.insert(format!("a{i}"), AttributeValue::string("v"));
        }
        assert!(attributes_problem(&a).is_some());
    }

    #[test]
    fn batch_shape() {
        let m = OutgoingMessage::new("x");
        assert_eq!(
            check_send_batch("q", "SendMessageBatch", &[], 10)
                .map_err(|e| e.code().map(str::to_owned)),
            Err(Some("EmptyBatchRequest".into()))
        );
        let eleven = vec![m.clone(); 11];
        let err = check_send_batch("q", "SendMessageBatch", &eleven, 1 << 20).expect_err("11");
        assert_eq!(err.code(), Some("TooManyEntriesInBatchRequest"));
        let big = vec![OutgoingMessage::new("x".repeat(600)); 2];
        let err = check_send_batch("q", "SendMessageBatch", &big, 1000).expect_err("big");
        assert_eq!(err.code(), Some("BatchRequestTooLong"));
        assert!(check_distinct("q", "DeleteMessageBatch", ["a", "b", "a"]).is_err());
    }
}
