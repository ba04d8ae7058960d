//! Trace context on the embedded transport: a handler's sends continue its trace into the next
//! consumer, a message without context starts a trace, a full message carries its context in
//! the `AWSTraceHeader`, and a batch handler's span links every message it handles.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fleet_bus::consumer::{Delivery, batch_handler_fn, handler_fn};
use fleet_bus::scenarios::support::declare_with_dlq;
use fleet_bus::sns::SnsEnvelope;
use fleet_bus::trace::{self, TRACEPARENT, TraceContext};
use fleet_bus::{
    AttributeValue, Consumer, Declaration, OutgoingMessage, SubscriptionDecl, TopicDecl, Transport,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The fields of every `process` span, by span, as recorded.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, HashMap<String, String>>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() != "process" || attrs.metadata().target() != "fleet_bus" {
            return;
        }
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().insert(id.into_u64(), fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(fields) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

impl Spans {
    /// Every process span's fields; installs the recorder for the calling thread (the tests
    /// run on a current-thread runtime, so the consumer's tasks see it too).
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let spans = Self::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        (spans, guard)
    }

    fn all(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().values().cloned().collect()
    }

    /// The span whose `span_id` field is `context`'s span id.
    fn of(&self, context: &TraceContext) -> HashMap<String, String> {
        let id = context.span_id.to_string();
        let found = self
            .all()
            .into_iter()
            .find(|f| f.get("span_id") == Some(&id));
        found.unwrap_or_else(|| panic!("no process span {id} among {:?}", self.all()))
    }
}

/// What a handler saw: the message's traceparent attribute and the task's current context.
#[derive(Clone, Debug)]
struct Seen {
    attribute: Option<TraceContext>,
    current: Option<TraceContext>,
    delivery: Delivery,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(d: &Delivery) -> Seen {
    Seen {
        attribute: d
            .message
            .attributes
            .get(TRACEPARENT)
            .and_then(AttributeValue::as_str)
            .and_then(TraceContext::from_traceparent),
        current: trace::current(),
        delivery: d.clone(),
    }
}

/// A consumer of `queue` that logs what it sees and, if `forward_to` is set, sends a message
/// there from inside the handler.
fn recording(
    bus: &fleet_bus::embedded::EmbeddedBus,
    queue: &str,
    log: &Log,
    forward_to: Option<&str>,
) -> Running {
    let (log, bus2, forward_to) = (log.clone(), bus.clone(), forward_to.map(str::to_owned));
    spawn(
        Consumer::new(bus.clone(), queue).handler(handler_fn(move |d: Delivery| {
            let (log, bus, forward_to) = (log.clone(), bus2.clone(), forward_to.clone());
            async move {
                log.lock().unwrap().push(seen(&d));
                if let Some(to) = forward_to {
                    let sender = bus.queue(&to).await?.sender();
                    sender.send(OutgoingMessage::new("next")).await?;
                }
                Ok(())
            }
        })),
    )
}

#[tokio::test(start_paused = true)]
async fn a_handler_s_send_continues_its_trace_into_the_next_consumer() {
    let (spans, _guard) = Spans::install();
    let bus = bus_with_queue("first", 3, SECS(30)).await;
    declare_with_dlq(&bus, "second", 3, SECS(30)).await;
    let (first, second) = (Log::default(), Log::default());
    let a = recording(&bus, "first", &first, Some("second"));
    let b = recording(&bus, "second", &second, None);
    // Sent outside any handler: the message gets a root of its own.
    send_all(&bus, "first", vec![OutgoingMessage::new("start")]).await;
    wait_for(SECS(10), || async { !second.lock().unwrap().is_empty() }).await;
    a.stop().await;
    b.stop().await;

    let first = first.lock().unwrap()[0].clone();
    let second = second.lock().unwrap()[0].clone();
    let root = first.attribute.expect("the producer's root");
    let first_run = first.current.expect("the first handler's context");
    assert_eq!(
        first_run.trace_id, root.trace_id,
        "the handler runs in the message's trace"
    );
    assert_ne!(first_run.span_id, root.span_id, "in a span of its own");
    assert_eq!(
        second.attribute,
        Some(first_run),
        "its send carries its own context"
    );
    let second_run = second.current.expect("the second handler's context");
    assert_eq!(
        second_run.trace_id, root.trace_id,
        "one trace across both consumers"
    );

    // The spans say the same, with the fields every log line inside them carries.
    let (s1, s2) = (spans.of(&first_run), spans.of(&second_run));
    assert_eq!(s1["trace_id"], root.trace_id.to_string());
    assert_eq!(s1["parent_span_id"], root.span_id.to_string());
    assert_eq!(s2["parent_span_id"], first_run.span_id.to_string());
    assert_eq!(s1["queue"], "first");
    assert_eq!(s1["message_id"], first.delivery.message.id);
    assert_eq!(s1["attempt"], "1");
    assert_eq!(s1["otel.name"], "process first");
    assert_eq!(s1["otel.kind"], "consumer");
    assert_eq!(s1["messaging.system"], "aws_sqs");
    assert_eq!(s1["messaging.operation.type"], "process");
    assert!(s1.contains_key("worker"));
    assert!(
        !s1.contains_key("trace_sampled"),
        "sampled traces say nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_without_context_gets_a_root() {
    let (spans, _guard) = Spans::install();
    let bus = bus_with_queue("raw", 3, SECS(30)).await;
    // SNS has no system attribute to fall back to: a message with 10 attributes of its own is
    // published without a context (and published all the same).
    let topic = TopicDecl::new("events").subscribe(SubscriptionDecl::new("raw").raw());
    bus.declare(&Declaration::Topic(&topic)).await.unwrap();
    let subscription = Declaration::Subscription {
        topic: "events",
        subscription: &topic.subscriptions[0],
    };
    bus.declare(&subscription).await.unwrap();
    let full = (0..10).fold(OutgoingMessage::new("full"), |m, i| {
        m.attribute(format!("a{i}"), AttributeValue::string("v"))
    });
    bus.topic("events")
        .await
        .unwrap()
        .publish(full)
        .await
        .unwrap();
    let log = Log::default();
    let running = recording(&bus, "raw", &log, None);
    wait_for(SECS(10), || async { !log.lock().unwrap().is_empty() }).await;
    running.stop().await;

    let got = log.lock().unwrap()[0].clone();
    assert_eq!(got.attribute, None);
    assert_eq!(got.delivery.message.system.trace_header, None);
    let run = got.current.expect("a root context");
    let span = spans.of(&run);
    assert_eq!(span["trace_id"], run.trace_id.to_string());
    assert!(
        !span.contains_key("parent_span_id"),
        "a root has no parent: {span:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_message_carries_its_context_in_the_trace_header() {
    let _spans = Spans::install();
    let bus = bus_with_queue("full", 3, SECS(30)).await;
    let full = (0..10).fold(OutgoingMessage::new("full"), |m, i| {
        m.attribute(format!("a{i}"), AttributeValue::string("v"))
    });
    send_all(&bus, "full", vec![full.clone()]).await;
    let log = Log::default();
    let running = recording(&bus, "full", &log, None);
    wait_for(SECS(10), || async { !log.lock().unwrap().is_empty() }).await;
    running.stop().await;

    let got = log.lock().unwrap()[0].clone();
    assert_eq!(
        got.delivery.message.attributes, full.attributes,
        "no eleventh attribute"
    );
    let header = got
        .delivery
        .message
        .system
        .trace_header
        .as_deref()
        .expect("AWSTraceHeader");
    let sent = TraceContext::from_xray(header).expect("an X-Ray header");
    assert_eq!(got.current.unwrap().trace_id, sent.trace_id);
}

#[tokio::test(start_paused = true)]
async fn enveloped_delivery_carries_the_context_inside_the_envelope() {
    let _spans = Spans::install();
    let bus = bus_with_queue("enveloped", 3, SECS(30)).await;
    let topic = TopicDecl::new("wrapped").subscribe(SubscriptionDecl::new("enveloped"));
    bus.declare(&Declaration::Topic(&topic)).await.unwrap();
    let subscription = Declaration::Subscription {
        topic: "wrapped",
        subscription: &topic.subscriptions[0],
    };
    bus.declare(&subscription).await.unwrap();
    bus.topic("wrapped")
        .await
        .unwrap()
        .publish(OutgoingMessage::new("{}"))
        .await
        .unwrap();
    let log = Log::default();
    let running = recording(&bus, "enveloped", &log, None);
    wait_for(SECS(10), || async { !log.lock().unwrap().is_empty() }).await;
    running.stop().await;

    let got = log.lock().unwrap()[0].clone();
    assert_eq!(
        got.attribute, None,
        "an enveloped message has no SQS attributes"
    );
    let envelope = SnsEnvelope::detect(&got.delivery.message.body)
        .unwrap()
        .unwrap();
    let published = envelope.attributes[TRACEPARENT].as_str().unwrap();
    let published = TraceContext::from_traceparent(published).unwrap();
    assert_eq!(got.current.unwrap().trace_id, published.trace_id);
}

#[tokio::test(start_paused = true)]
async fn a_batch_runs_in_one_span_linked_to_every_message() {
    let (spans, _guard) = Spans::install();
    let bus = bus_with_queue("batch", 3, SECS(30)).await;
    send_all(&bus, "batch", numbered(3)).await;
    let log = Log::default();
    let recorded = log.clone();
    let running = spawn(
        Consumer::new(bus.clone(), "batch").handler(batch_handler_fn(
            move |batch: Vec<Delivery>| {
                let log = recorded.clone();
                async move {
                    log.lock().unwrap().extend(batch.iter().map(seen));
                    Ok(batch.iter().map(|_| Ok(())).collect())
                }
            },
        )),
    );
    wait_drained(&bus, "batch", SECS(10)).await;
    running.stop().await;

    let log = log.lock().unwrap().clone();
    let first = &log[0];
    let run = first.current.expect("the batch's context");
    let span = spans.of(&run);
    let contexts: Vec<TraceContext> = log
        .iter()
        .filter(|s| s.current == first.current)
        .map(|s| s.attribute.unwrap())
        .collect();
    assert_eq!(
        run.trace_id, contexts[0].trace_id,
        "the first message's trace"
    );
    assert_eq!(span["parent_span_id"], contexts[0].span_id.to_string());
    let links: Vec<&str> = span["links"].split(' ').collect();
    let expected: Vec<String> = contexts.iter().map(TraceContext::traceparent).collect();
    assert_eq!(links, expected);
    assert_eq!(
        span["messaging.batch.message_count"],
        contexts.len().to_string()
    );
    assert!(
        !span.contains_key("message_id"),
        "a batch names no single message"
    );
}
