//! Reading a received message's trace context, cheaply: attribute and system-attribute look-ups,
//! and a JSON parse only for a body that names `traceparent`.

use serde::Deserialize;

use super::{SpanId, TRACEPARENT, TraceContext, TraceId};
use crate::message::{AttributeValue, Message};

/// A received message's place in its trace: the producer's context when it sent one, else a new
/// trace that this receive of the message starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MessageTrace {
    /// The context the message arrived with.
    pub parent: Option<TraceContext>,
    trace_id: TraceId,
    sampled: bool,
}

impl MessageTrace {
    /// The message's context, looked for in this order:
    /// 1. the `traceparent` message attribute (a raw message, or SNS raw delivery);
    /// 2. the `traceparent` attribute inside an SNS envelope (SNS delivery without raw
    ///    delivery), parsed only when the body contains `"traceparent"`;
    /// 3. the `AWSTraceHeader` system attribute (a message sent with 10 attributes already).
    ///
    /// Fleet's own `traceparent` comes before `AWSTraceHeader` because on AWS the header may be
    /// another service's: SNS with active tracing writes its own segment there, started from one
    /// request header for a whole publish batch, while each message's `traceparent` is its own.
    pub fn of(message: &Message) -> Self {
        let parent = attribute(message)
            .or_else(|| enveloped(&message.body))
            .or_else(|| {
                let header = message.system.trace_header.as_deref()?;
                TraceContext::from_xray(header)
            });
        match parent {
            Some(p) => Self {
                parent: Some(p),
                trace_id: p.trace_id,
                sampled: p.sampled,
            },
            None => Self {
                parent: None,
                trace_id: TraceId::random(),
                sampled: true,
            },
        }
    }

    /// The trace of several messages handled together (a batch): a child of the first message's
    /// context, so a batch of one continues its message's trace exactly.
    pub fn of_batch(first: Option<&MessageTrace>) -> Self {
        first.copied().unwrap_or(Self {
            parent: None,
            trace_id: TraceId::random(),
            sampled: true,
        })
    }

    /// The context of one run of the handler: a new span, the child of the message's context
    /// (or, for a message without one, a root span of the trace its receive started). Each try
    /// is its own span; every try of one receive is in the same trace.
    pub fn next_span(&self) -> TraceContext {
        match self.parent {
            Some(p) => p.child(),
            None => TraceContext {
                trace_id: self.trace_id,
                span_id: SpanId::random(),
                sampled: self.sampled,
            },
        }
    }
}

fn attribute(message: &Message) -> Option<TraceContext> {
    let value = message.attributes.get(TRACEPARENT)?;
    TraceContext::from_traceparent(AttributeValue::as_str(value)?)
}

/// Only what is needed of an SNS envelope: `MessageAttributes.traceparent.Value`. Every other
/// field is skipped without being stored.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "MessageAttributes")]
    attributes: Option<EnvelopeAttributes>,
}

#[derive(Deserialize)]
struct EnvelopeAttributes {
    traceparent: Option<EnvelopeAttribute>,
}

#[derive(Deserialize)]
struct EnvelopeAttribute {
    #[serde(rename = "Value")]
    value: String,
}

fn enveloped(body: &str) -> Option<TraceContext> {
    // Most bodies are not envelopes with a context: one substring search rules them out.
    if !body.contains("\"traceparent\"") {
        return None;
    }
    let envelope: Envelope = serde_json::from_str(body).ok()?;
    TraceContext::from_traceparent(&envelope.attributes?.traceparent?.value)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::message::{MessageAttributes, Receipt, SystemAttributes};
    use crate::sns::SnsEnvelope;

    fn message(body: &str, attributes: MessageAttributes, header: Option<String>) -> Message {
        Message {
            id: "m".into(),
            body: body.into(),
            attributes,
            system: SystemAttributes {
                receive_count: 1,
                sent_at: SystemTime::now(),
                first_received_at: None,
                message_group_id: None,
                deduplication_id: None,
                sequence_number: None,
                trace_header: header,
            },
            receipt: Receipt::new("r"),
        }
    }

    fn with_traceparent(c: &TraceContext) -> MessageAttributes {
        MessageAttributes::from([(TRACEPARENT.into(), AttributeValue::string(c.traceparent()))])
    }

    #[test]
    fn the_attribute_comes_first_then_the_envelope_then_the_header() {
        let (a, b, c) = (
            TraceContext::root(),
            TraceContext::root(),
            TraceContext::root(),
        );
        let env = SnsEnvelope::new("id", "arn:aws:sns:r:1:t", "{}", with_traceparent(&b)).to_json();
        let all = message(&env, with_traceparent(&a), Some(c.to_xray()));
        assert_eq!(MessageTrace::of(&all).parent, Some(a));
        let no_attribute = message(&env, MessageAttributes::new(), Some(c.to_xray()));
        assert_eq!(MessageTrace::of(&no_attribute).parent, Some(b));
        let header_only = message("{}", MessageAttributes::new(), Some(c.to_xray()));
        assert_eq!(MessageTrace::of(&header_only).parent, Some(c));
    }

    #[test]
    fn an_invalid_context_is_no_context() {
        let bad = MessageAttributes::from([(TRACEPARENT.into(), AttributeValue::string("00-0"))]);
        let m = message("x", bad, Some("Root=garbage".into()));
        let t = MessageTrace::of(&m);
        assert_eq!(t.parent, None);
        assert_eq!(
            t.next_span().trace_id,
            t.next_span().trace_id,
            "one trace per receive"
        );
        assert_ne!(
            t.next_span().span_id,
            t.next_span().span_id,
            "one span per try"
        );
    }

    #[test]
    fn a_body_that_mentions_traceparent_but_is_no_envelope_is_no_context() {
        for body in [
            r#"{"note": "traceparent"}"#,
            r#"{"MessageAttributes": 3, "traceparent": 1}"#,
            "\"traceparent\" not json",
        ] {
            assert_eq!(
                MessageTrace::of(&message(body, MessageAttributes::new(), None)).parent,
                None
            );
        }
    }

    #[test]
    fn a_run_is_a_child_of_the_message_context() {
        let parent = TraceContext::root();
        let t = MessageTrace::of(&message("x", with_traceparent(&parent), None));
        let run = t.next_span();
        assert_eq!(run.trace_id, parent.trace_id);
        assert_ne!(run.span_id, parent.span_id);
        assert_eq!(MessageTrace::of_batch(Some(&t)), t);
        assert_eq!(MessageTrace::of_batch(None).parent, None);
    }
}
