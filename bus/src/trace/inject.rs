//! Stamping outgoing messages with the trace context: the one place every transport's send and
//! publish goes through, after the batch has passed the service's checks.

use std::borrow::Cow;

use super::{TRACEPARENT, TraceContext, current};
use crate::limits::{
    MAX_MESSAGE_ATTRIBUTES, MAX_SNS_BATCH_BYTES, MAX_SNS_MESSAGE_BYTES, MAX_SQS_BATCH_BYTES,
    MAX_SQS_MESSAGE_BYTES,
};
use crate::message::{AttributeValue, OutgoingMessage};

/// Where a batch goes and what it may carry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    /// The destination's message size limit.
    pub max_message_bytes: usize,
    /// The destination's batch size limit.
    pub max_batch_bytes: usize,
    /// Whether messages can carry the context as the `AWSTraceHeader` system attribute (SQS
    /// queues can; SNS topics have no per-message system attribute).
    pub system_header: bool,
}

impl Stamp {
    /// An SQS queue (both transports).
    pub const SQS: Self = Self {
        max_message_bytes: MAX_SQS_MESSAGE_BYTES,
        max_batch_bytes: MAX_SQS_BATCH_BYTES,
        system_header: true,
    };
    /// An SNS topic (both transports).
    pub const SNS: Self = Self {
        max_message_bytes: MAX_SNS_MESSAGE_BYTES,
        max_batch_bytes: MAX_SNS_BATCH_BYTES,
        system_header: false,
    };
}

/// Bytes the `traceparent` attribute adds: its name, its data type and the 55-character value.
const ATTRIBUTE_BYTES: usize = TRACEPARENT.len() + "String".len() + 55;

/// The batch with each message carrying a trace context: the handler's ([`current`]) inside a
/// handler, else a new root per message.
///
/// A message that already has a `traceparent` attribute or a trace header keeps it (a redrive
/// or a producer that set it on purpose). Otherwise the context goes in the `traceparent`
/// attribute when the message has an attribute slot left and the attribute fits within the
/// message and batch size limits; else, where `system_header` allows, in the trace header
/// (`AWSTraceHeader`, which counts against no limit); else the message goes without it. So a
/// batch that was valid before stamping is valid after: tracing never fails nor splits a send.
pub(crate) fn stamp(messages: &[OutgoingMessage], to: Stamp) -> Cow<'_, [OutgoingMessage]> {
    let needs =
        |m: &OutgoingMessage| m.trace_header.is_none() && !m.attributes.contains_key(TRACEPARENT);
    if !messages.iter().any(needs) {
        return Cow::Borrowed(messages);
    }
    let handler = current();
    let mut total: usize = messages.iter().map(OutgoingMessage::size).sum();
    let mut out = messages.to_vec();
    for m in out.iter_mut().filter(|m| needs(m)) {
        let context = handler.unwrap_or_else(TraceContext::root);
        let fits = m.attributes.len() < MAX_MESSAGE_ATTRIBUTES
            && m.size() + ATTRIBUTE_BYTES <= to.max_message_bytes
            && total + ATTRIBUTE_BYTES <= to.max_batch_bytes;
        if fits {
            m.attributes.insert(
                TRACEPARENT.to_owned(),
                AttributeValue::string(context.traceparent()),
            );
            total += ATTRIBUTE_BYTES;
        } else if to.system_header {
            m.trace_header = Some(context.to_xray());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Small limits, to reach them in a test.
    const SQS: Stamp = Stamp {
        max_message_bytes: 1000,
        max_batch_bytes: 2000,
        system_header: true,
    };
    const SNS: Stamp = Stamp {
        system_header: false,
        ..SQS
    };

    fn with_attributes(n: usize) -> OutgoingMessage {
        (0..n).fold(OutgoingMessage::new("body"), |m, i| {
            m.attribute(format!("a{i}"), AttributeValue::string("v"))
        })
    }

    fn traceparent_of(m: &OutgoingMessage) -> Option<TraceContext> {
        m.attributes
            .get(TRACEPARENT)
            .and_then(AttributeValue::as_str)
            .and_then(TraceContext::from_traceparent)
    }

    #[test]
    fn the_attribute_counts_what_the_size_limits_count() {
        let mut m = OutgoingMessage::new("x");
        let before = m.size();
        m.attributes.insert(
            TRACEPARENT.into(),
            AttributeValue::string(TraceContext::root().traceparent()),
        );
        assert_eq!(m.size() - before, ATTRIBUTE_BYTES);
    }

    #[test]
    fn outside_a_handler_each_message_gets_its_own_root() {
        let out = stamp(&[with_attributes(0), with_attributes(9)], SQS).into_owned();
        let (a, b) = (
            traceparent_of(&out[0]).unwrap(),
            traceparent_of(&out[1]).unwrap(),
        );
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(out[1].attributes.len(), 10);
        assert!(out.iter().all(|m| m.trace_header.is_none()));
    }

    #[tokio::test]
    async fn inside_a_handler_messages_carry_its_context() {
        let context = TraceContext::root();
        let out = super::super::scope(context, async {
            stamp(&[with_attributes(1)], SQS).into_owned()
        })
        .await;
        assert_eq!(traceparent_of(&out[0]), Some(context));
    }

    #[test]
    fn a_full_message_goes_by_the_system_header_on_a_queue_and_without_on_a_topic() {
        let full = with_attributes(10);
        let sqs = stamp(std::slice::from_ref(&full), SQS);
        assert_eq!(sqs[0].attributes, full.attributes, "no eleventh attribute");
        let header = sqs[0].trace_header.as_deref().expect("AWSTraceHeader");
        assert!(TraceContext::from_xray(header).is_some());
        let sns = stamp(std::slice::from_ref(&full), SNS);
        assert_eq!(sns[0], full, "sent as it was");
    }

    #[test]
    fn the_attribute_is_left_off_rather_than_pass_a_size_limit() {
        let near_message_limit = OutgoingMessage::new("x".repeat(SQS.max_message_bytes - 10));
        let out = stamp(std::slice::from_ref(&near_message_limit), SNS);
        assert_eq!(out[0], near_message_limit);
        let out = stamp(std::slice::from_ref(&near_message_limit), SQS);
        assert!(out[0].attributes.is_empty() && out[0].trace_header.is_some());

        // Two messages that each have room, but only one attribute fits in the batch.
        let to = Stamp {
            max_message_bytes: 2000,
            ..SNS
        };
        let half = OutgoingMessage::new("x".repeat(960));
        let out = stamp(&[half.clone(), half], to).into_owned();
        let stamped = out.iter().filter(|m| traceparent_of(m).is_some()).count();
        assert_eq!(stamped, 1);
        assert!(out.iter().map(OutgoingMessage::size).sum::<usize>() <= to.max_batch_bytes);
    }

    #[test]
    fn a_context_already_there_is_kept() {
        let own = TraceContext::root();
        let m = OutgoingMessage::new("b")
            .attribute(TRACEPARENT, AttributeValue::string(own.traceparent()));
        let out = stamp(std::slice::from_ref(&m), SQS);
        assert!(matches!(out, Cow::Borrowed(_)));
        let mut h = with_attributes(10);
        h.trace_header = Some(own.to_xray());
        let out = stamp(std::slice::from_ref(&h), SQS);
        assert_eq!(out[0].trace_header, h.trace_header);
    }
}
