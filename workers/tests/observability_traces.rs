//! Trace propagation end to end on moto: one `order.placed` published through the producer is
//! one trace across the orders worker's `process` span and the email and analytics workers'
//! spans it causes (producer → SNS → SQS → orders → SNS → SQS → email/analytics), exported
//! through the span export layer to memory; a message that already has 10 attributes is still
//! sent and published, its context going by `AWSTraceHeader` on the SQS path; and spans reach
//! an OTLP/HTTP JSON endpoint.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::fleet_run::Deployment;
use fleet_bus::producer::BatchProducer;
use fleet_bus::scenarios::unique_name;
use fleet_bus::trace::{self, TRACEPARENT, TraceContext};
use fleet_bus::{
    AttributeValue, OutgoingMessage, QueueDecl, ReceiveRequest, SubscriptionDecl, TopicDecl,
    Transport,
};
use fleet_schemas::{OrderPlaced, Producer};
use fleet_workers::run::config::{OtlpProtocol, TracingConfig};
use fleet_workers::run::{Backends, Effective, Fleet, WorkerKind};
use fleet_workers::telemetry::export::is_exported;
use fleet_workers::telemetry::{SpanExportLayer, SpanSink, otlp};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The spans every test of this binary exports, through the one global subscriber.
fn exported() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let sink = SpanSink::default();
        sink.set(SimpleSpanProcessor::new(exporter.clone()));
        let layer = SpanExportLayer::new(sink).with_filter(filter_fn(is_exported));
        tracing_subscriber::registry().with(layer).init();
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        })
}

/// The exported spans of queue `queue`.
fn spans_of(queue: &str) -> Vec<SpanData> {
    let spans = exported().get_finished_spans().unwrap();
    spans
        .into_iter()
        .filter(|s| attribute(s, "queue").as_deref() == Some(queue))
        .collect()
}

fn email_section(p: &str) -> String {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates");
    format!(
        r#"
[email]
enabled = true
queue = "{p}-email"
from = "Fleet <fleet-{p}@example.com>"
templates = "{}"
mailer = "memory"
[email.consumer]
pollers = 1
wait_time = "2s"
"#,
        templates.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_published_order_is_one_trace_across_the_workers_it_reaches() {
    exported();
    let d = Deployment::provision_with("traces", 5, email_section).await;
    let config = Effective::load(Some(&d.config), Vec::new()).unwrap().config;
    let backends = Backends::aws(&d.sdk);
    let chosen = [WorkerKind::Orders, WorkerKind::Email, WorkerKind::Analytics];
    let fleet = Fleet::start(&backends, &config, &chosen).await.unwrap();

    let topic = d.transport.topic(&d.topic()).await.unwrap();
    let producer = Producer::new(BatchProducer::to_topic(d.topic(), topic), "checkout");
    let order: OrderPlaced = serde_json::from_value(serde_json::json!({
        "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total_cents": 1200,
        "customer_email": "c-1@example.com",
        "items": [{"sku": "TEE", "quantity": 1, "unit_price_cents": 1200}],
    }))
    .unwrap();
    let envelope = producer.envelope(order).with_correlation_id("checkout-1");
    producer.send_envelope(&envelope).await.unwrap();

    // The orders worker handles it once; the email worker handles the confirmation it
    // publishes; the analytics worker counts the order and the orders worker's analytics event.
    let started = Instant::now();
    let (orders, email, analytics) = loop {
        let found = (
            spans_of(&d.orders()),
            spans_of(&d.email()),
            spans_of(&d.analytics()),
        );
        let counted = found.2.iter().map(batch_size).sum::<usize>();
        if !found.0.is_empty() && !found.1.is_empty() && counted >= 2 {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "spans so far: orders {:?}, email {:?}, analytics {:?}",
            found.0.len(),
            found.1.len(),
            found.2.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for report in fleet.drain().await {
        report.report.unwrap();
    }

    let trace_id = orders[0].span_context.trace_id();
    let orders_span = orders[0].span_context.span_id();
    for span in orders.iter().chain(&email).chain(&analytics) {
        assert_eq!(
            span.span_context.trace_id(),
            trace_id,
            "one trace: {span:?}"
        );
        assert_eq!(
            span.name,
            format!("process {}", attribute(span, "queue").unwrap())
        );
    }
    assert!(
        orders[0].parent_span_is_remote,
        "a child of the producer's context"
    );
    assert_eq!(
        attribute(&orders[0], "correlation_id").as_deref(),
        Some("checkout-1")
    );
    assert_eq!(attribute(&orders[0], "worker").as_deref(), Some("orders"));
    assert_eq!(
        email[0].parent_span_id, orders_span,
        "the email worker's span is the orders worker's child"
    );
    assert_eq!(
        attribute(&email[0], "correlation_id").as_deref(),
        Some("checkout-1")
    );
    // A batch span is the child of its first message, and links every message it handles.
    let caused = analytics.iter().any(|s| {
        s.parent_span_id == orders_span
            || s.links
                .iter()
                .any(|l| l.span_context.span_id() == orders_span)
    });
    assert!(
        caused,
        "an analytics span caused by the orders worker: {analytics:?}"
    );
}

/// How many messages a span handled (a batch span says how many).
fn batch_size(span: &SpanData) -> usize {
    attribute(span, "messaging.batch.message_count").map_or(1, |n| n.parse().unwrap())
}

fn ten_attributes(body: &str) -> OutgoingMessage {
    (0..10).fold(OutgoingMessage::new(body), |m, i| {
        m.attribute(format!("a{i}"), AttributeValue::string("v"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_ten_attributes_is_still_sent_and_published() {
    let t = fleet_tests::moto::transport().await;
    let (queue, topic) = (unique_name("full"), unique_name("full-topic"));
    let decl = TopicDecl::new(&topic).subscribe(SubscriptionDecl::new(&queue).raw());
    let topology = fleet_bus::Topology {
        queues: vec![QueueDecl::new(&queue)],
        topics: vec![decl],
        ..Default::default()
    };
    fleet_bus::provision(&t, &topology).await.unwrap();
    let handle = t.queue(&queue).await.unwrap();

    // Sent from inside a handler's context: the context goes in AWSTraceHeader.
    let context = TraceContext::root();
    let sender = handle.sender();
    let sent = trace::scope(context, sender.send(ten_attributes("sent")));
    sent.await.unwrap();
    // Published: SNS has no per-message system attribute; the message goes without a context.
    let topic_handle = t.topic(&topic).await.unwrap();
    topic_handle
        .publish(ten_attributes("published"))
        .await
        .unwrap();

    let mut got = BTreeMap::new();
    let started = Instant::now();
    while got.len() < 2 && started.elapsed() < Duration::from_secs(30) {
        let request = ReceiveRequest::new(10, Duration::from_secs(1));
        for m in handle.queue().receive(&request).await.unwrap() {
            got.insert(m.body.clone(), m);
        }
    }
    let sent = &got["sent"];
    assert_eq!(
        sent.attributes,
        ten_attributes("sent").attributes,
        "no eleventh attribute"
    );
    let header = sent.system.trace_header.as_deref().expect("AWSTraceHeader");
    assert_eq!(TraceContext::from_xray(header), Some(context));
    let published = &got["published"];
    assert_eq!(published.attributes, ten_attributes("published").attributes);
    assert!(!published.attributes.contains_key(TRACEPARENT));
}

/// A one-request-at-a-time HTTP server that answers 200 `{}` and keeps each request's path,
/// content type and body.
type Requests = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

fn otlp_server() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let kept = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut content_type) = (0, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            kept.lock().unwrap().push((path, content_type, body));
            let mut stream = reader.into_inner();
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    (address, requests)
}

/// Exports one process span through the OTLP processor `protocol` configures, to a server in
/// the test; returns the span's context and the one request the server received.
fn export_one(protocol: OtlpProtocol) -> (TraceContext, TraceContext, (String, String, Vec<u8>)) {
    let (endpoint, requests) = otlp_server();
    let config = TracingConfig {
        otlp_endpoint: Some(endpoint),
        otlp_protocol: protocol,
    };
    let sink = SpanSink::default();
    sink.set(otlp::processor(&config).unwrap().unwrap());
    let layer = SpanExportLayer::new(sink.clone()).with_filter(filter_fn(is_exported));
    let parent = TraceContext::root();
    let run = parent.child();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _span = tracing::info_span!(
            target: "fleet_bus",
            "process",
            queue = "q",
            trace_id = %run.trace_id,
            span_id = %run.span_id,
            parent_span_id = %parent.span_id,
            otel.name = "process q",
            otel.kind = "consumer",
        );
    });
    sink.shutdown(Duration::from_secs(10)).unwrap();
    let mut requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 1, "one export");
    (parent, run, requests.remove(0))
}

#[test]
fn spans_are_exported_over_otlp_http_json() {
    let (parent, run, (path, content_type, body)) = export_one(OtlpProtocol::HttpJson);
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/json");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let resource = &body["resourceSpans"][0];
    let service = resource["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .unwrap();
    assert_eq!(service["value"]["stringValue"], "fleet");
    let span = &resource["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], run.trace_id.to_string());
    assert_eq!(span["spanId"], run.span_id.to_string());
    assert_eq!(span["parentSpanId"], parent.span_id.to_string());
    assert_eq!(span["name"], "process q");
    // SPAN_KIND_CONSUMER
    assert_eq!(span["kind"], 5);
}

#[test]
fn spans_are_exported_over_otlp_http_protobuf_by_default() {
    assert_eq!(OtlpProtocol::default(), OtlpProtocol::HttpProtobuf);
    let (parent, run, (path, content_type, body)) = export_one(OtlpProtocol::HttpProtobuf);
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    // Protobuf carries the ids as raw bytes.
    let contains = |bytes: &[u8]| body.windows(bytes.len()).any(|w| w == bytes);
    assert!(contains(&run.trace_id.to_bytes()));
    assert!(contains(&run.span_id.to_bytes()));
    assert!(contains(&parent.span_id.to_bytes()));
    assert!(contains(b"process q"));
}
