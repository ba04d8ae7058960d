//! The producer: typed events in, Fleet envelopes out, with the attributes filter policies use,
//! sent in full batches with retries and refused before sending when too large.

use fleet_bus::producer::{BatchProducer, SendReport};
use fleet_bus::{BusError, MessageAttributes, OutgoingMessage, SendReceipt};
use serde::Serialize;

use crate::decode::MAX_BODY_BYTES;
use crate::envelope::Envelope;
use crate::error::SchemaError;
use crate::event::Event;
use crate::events::FleetEvent;

/// Sends typed events to one queue or topic.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use fleet_bus::producer::BatchProducer;
/// # use fleet_schemas::{Producer, AnalyticsTracked};
/// # async fn example(topic: Arc<dyn fleet_bus::Publisher>, event: AnalyticsTracked) -> Result<(), fleet_schemas::SchemaError> {
/// let producer = Producer::new(BatchProducer::to_topic("fleet-events", topic), "checkout");
/// producer.send(event).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: BatchProducer,
    name: String,
}

impl Producer {
    /// A producer named `producer_name` (the envelope's `producer`) sending through `inner`,
    /// whose size limit is lowered to what every Fleet consumer accepts.
    pub fn new(inner: BatchProducer, producer_name: &str) -> Self {
        Self {
            inner: inner.max_message_bytes(MAX_BODY_BYTES),
            name: producer_name.to_owned(),
        }
    }

    /// A new envelope for `event`, from this producer.
    pub fn envelope<E: Event>(&self, event: E) -> Envelope<E> {
        Envelope::new(event, &self.name)
    }

    /// The message for an envelope: checked as a consumer would check it, serialized, with the
    /// `type`, `version` and routing-key attributes.
    ///
    /// # Errors
    /// `InvalidField`/`Rejected` when the envelope breaks a rule, `Oversize` when too large.
    pub fn message<E: Event>(
        &self,
        envelope: &Envelope<E>,
    ) -> Result<OutgoingMessage, SchemaError> {
        envelope.check()?;
        self.outgoing(envelope, envelope.attributes())
    }

    /// The message for an already decoded (so already checked) envelope of any Fleet type.
    ///
    /// # Errors
    /// `Oversize` when too large.
    pub fn message_for(
        &self,
        envelope: &Envelope<FleetEvent>,
    ) -> Result<OutgoingMessage, SchemaError> {
        self.outgoing(envelope, envelope.attributes())
    }

    fn outgoing<T: Serialize>(
        &self,
        envelope: &T,
        attributes: MessageAttributes,
    ) -> Result<OutgoingMessage, SchemaError> {
        let body = serde_json::to_string(envelope).map_err(|e| SchemaError::InvalidValue {
            reason: format!("cannot serialize the envelope: {e}"),
        })?;
        let message = OutgoingMessage {
            body,
            attributes,
            ..OutgoingMessage::default()
        };
        let limit = self.inner.message_limit();
        if message.size() > limit {
            return Err(SchemaError::Oversize {
                size: message.size(),
                limit,
            });
        }
        Ok(message)
    }

    /// Sends one event in a new envelope.
    ///
    /// # Errors
    /// A rule the event breaks, `Oversize`, or `Send` when the destination refuses it.
    pub async fn send<E: Event>(&self, event: E) -> Result<SendReceipt, SchemaError> {
        self.send_envelope(&self.envelope(event)).await
    }

    /// Sends one envelope (to set correlation or causation ids first).
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_envelope<E: Event>(
        &self,
        envelope: &Envelope<E>,
    ) -> Result<SendReceipt, SchemaError> {
        let message = self.message(envelope)?;
        self.inner.send(message).await.map_err(SchemaError::Send)
    }

    /// Sends prepared messages in batches of up to 10, several batches at a time, retrying what
    /// fails on the service side; `progress` hears how many settled after each batch.
    pub async fn send_messages(
        &self,
        messages: Vec<OutgoingMessage>,
        progress: impl FnMut(usize),
    ) -> SendReport {
        self.inner.send_all(messages, progress).await
    }
}

impl From<BusError> for SchemaError {
    fn from(e: BusError) -> Self {
        SchemaError::Send(e)
    }
}

#[cfg(test)]
mod tests {
    use fleet_bus::embedded::EmbeddedBus;
    use fleet_bus::{QueueDecl, ReceiveRequest, Topology, Transport};

    use super::*;
    use crate::events::AnalyticsTracked;

    fn analytics(properties: usize) -> AnalyticsTracked {
        let props: serde_json::Map<String, serde_json::Value> = (0..properties)
            .map(|i| (format!("p{i}"), serde_json::json!("x".repeat(6000))))
            .collect();
        serde_json::from_value(serde_json::json!({"name": "signup", "subject": "user-1", "properties": props, "timestamp": "2026-11-26T15:00:00Z"})).expect("valid event")
    }

    #[tokio::test(start_paused = true)]
    async fn fills_the_envelope_sets_attributes_and_refuses_oversize() {
        let bus = EmbeddedBus::new();
        bus.provision(&Topology {
            queues: vec![QueueDecl::new("q")],
            topics: vec![],
            ..Default::default()
        })
        .await
        .expect("provision");
        let q = bus.queue("q").await.expect("queue");
        let producer = Producer::new(BatchProducer::to_queue("q", q.sender()), "checkout");
        producer.send(analytics(1)).await.expect("sent");
        let got = q
            .queue()
            .receive(&ReceiveRequest::new(1, std::time::Duration::ZERO))
            .await
            .expect("receive");
        let decoded =
            crate::decode(&got[0].body).expect("a consumer accepts what the producer sends");
        assert_eq!(decoded.header.producer, "checkout");
        let mut attributes = got[0].attributes.clone();
        // Every send carries its trace context besides the producer's attributes.
        assert!(attributes.remove(fleet_bus::trace::TRACEPARENT).is_some());
        assert_eq!(attributes, decoded.attributes());
        assert_eq!(
            got[0].attributes["type"].as_str(),
            Some("analytics.tracked")
        );
        assert_eq!(got[0].attributes["name"].as_str(), Some("signup"));
        let err = producer
            .send(analytics(45))
            .await
            .expect_err("45 properties of 6,000 bytes");
        assert_eq!(err.label(), "oversize");
        assert_eq!(
            bus.embedded_queue("q").expect("queue").api_calls().send,
            1,
            "the oversize message was never sent"
        );
    }
}
