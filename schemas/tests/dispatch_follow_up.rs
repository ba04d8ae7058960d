//! A `Router` handler that publishes a follow-up event through `fleet_schemas::Producer`, run by
//! the consumer engine on the embedded bus: a throttled publish is a transient failure (the
//! message is retried), never a dead letter.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::bus::{bus_with_queue, counts, dlq_name, peek_all, send_all, spawn, wait_for};
use fleet_bus::consumer::{Delivery, HandlerError};

use fleet_bus::producer::BatchProducer;

use fleet_bus::{
    BusError, Consumer, EntryResult, OutgoingMessage, Publisher, QueueDecl, SendReceipt,
    SubscriptionDecl, TopicDecl, Topology, Transport,
};
use fleet_schemas::{AnalyticsTracked, Envelope, OrderPaid, Producer, Router};

/// A topic whose first `throttles` calls fail as SNS fails under load: a retryable
/// `ThrottlingException` for the whole call. Later calls go to the real topic.
struct Throttled {
    inner: Arc<dyn Publisher>,
    throttles: u32,
    calls: AtomicU32,
}

#[async_trait]
impl Publisher for Throttled {
    async fn publish_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.throttles {
            return Err(BusError::Api {
                resource: "fleet-events".into(),
                operation: "PublishBatch",
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
                retryable: true,
                source: None,
            });
        }
        self.inner.publish_batch(messages).await
    }
}

fn tracked(e: &Envelope<OrderPaid>) -> AnalyticsTracked {
    serde_json::from_value(serde_json::json!({
        "name": "order_paid",
        "subject": e.payload.order_id.to_string(),
        "properties": {"amount_cents": e.payload.amount_cents},
        "timestamp": "2026-11-26T15:02:10Z",
    }))
    .unwrap()
}

/// A bus with `queue` (and its DLQ) and a topic `fleet-events` delivering raw to `followed`.
async fn bus_with_topic(queue: &str, followed: &str) -> fleet_bus::embedded::EmbeddedBus {
    let bus = bus_with_queue(queue, 5).await;
    let topology = Topology {
        queues: vec![QueueDecl::new(followed)],
        topics: vec![TopicDecl {
            name: "fleet-events".into(),
            content_based_deduplication: false,
            subscriptions: vec![SubscriptionDecl {
                queue: followed.into(),
                raw_delivery: true,
                filter_policy: None,
                filter_scope: Default::default(),
            }],
        }],
        ..Topology::default()
    };
    bus.provision(&topology).await.unwrap();
    bus
}

#[tokio::test(start_paused = true)]
async fn a_throttled_follow_up_publish_is_retried_not_dead_lettered() {
    let queue = "schemas-follow-up";
    let followed = "schemas-follow-up-analytics";
    let bus = bus_with_topic(queue, followed).await;
    let topic = Arc::new(Throttled {
        inner: bus.topic("fleet-events").await.unwrap(),
        throttles: 5,
        calls: AtomicU32::new(0),
    });
    let producer = Producer::new(
        BatchProducer::to_topic("fleet-events", topic.clone()),
        "payments",
    );
    send_all(
        &bus,
        queue,
        vec![OutgoingMessage::new(common::fixture("order.paid.v2.json"))],
    )
    .await;

    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let log = Arc::clone(&attempts);
    let router = Router::new("payments").on::<OrderPaid, _, _>(move |e, d: Delivery| {
        let (log, producer) = (Arc::clone(&log), producer.clone());
        async move {
            log.lock().unwrap().push(d.attempt);
            producer.send(tracked(&e)).await?;
            Ok::<(), HandlerError>(())
        }
    });
    let running = spawn(Consumer::new(bus.clone(), queue).handler(router.into_handler()));
    wait_for(Duration::from_secs(600), || async {
        counts(&bus, queue).await == Default::default()
    })
    .await;
    let report = running.stop().await;

    assert_eq!(
        *attempts.lock().unwrap(),
        [1, 2],
        "the producer tries 4 times per attempt: attempt 1 meets 4 throttles, attempt 2 one"
    );
    assert_eq!(topic.calls.load(Ordering::SeqCst), 6);
    assert_eq!(
        (
            report.received,
            report.retried,
            report.acked,
            report.dead_lettered
        ),
        (2, 1, 1, 0),
        "{report}"
    );
    assert_eq!(report.received, report.settled(), "{report}");
    assert_eq!(counts(&bus, &dlq_name(queue)).await, Default::default());
    let published = peek_all(&bus, followed).await;
    assert_eq!(published.len(), 1, "the follow-up went out once");
    let event = fleet_schemas::decode_as::<AnalyticsTracked>(&published[0].body).unwrap();
    assert_eq!(event.payload.subject.to_string(), "o-1001");
}
