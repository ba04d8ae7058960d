use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
use tracing::field::Empty;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// Runs `f` with the export layer on a sink that exports to memory; returns what it exported.
fn exported(set: bool, f: impl FnOnce()) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let sink = SpanSink::default();
    if set {
        assert!(sink.set(SimpleSpanProcessor::new(exporter.clone())));
        assert!(
            !sink.set(SimpleSpanProcessor::new(exporter.clone())),
            "set once"
        );
    }
    let layer = SpanExportLayer::new(sink).with_filter(filter_fn(is_exported));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    exporter.get_finished_spans().unwrap()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn process_span(sampled: bool) -> tracing::Span {
    tracing::info_span!(
        target: "fleet_bus",
        "process",
        worker = "orders",
        queue = "q",
        message_id = "m-1",
        attempt = 2u32,
        correlation_id = Empty,
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        span_id = "b7ad6b7169203331",
        parent_span_id = "00f067aa0ba902b7",
        trace_sampled = (!sampled).then_some(false),
        otel.name = "process q",
        otel.kind = "consumer",
        otel.status_code = Empty,
        error.type = Empty,
        messaging.system = "aws_sqs",
    )
}

#[test]
fn a_process_span_is_exported_with_the_ids_its_fields_name() {
    let spans = exported(true, || {
        let span = process_span(true);
        span.record("correlation_id", "c-1");
        span.record("otel.status_code", "ERROR");
        span.record("error.type", "timeout");
    });
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    let parent = TraceContext::from_traceparent(PARENT).unwrap();
    assert_eq!(
        s.span_context.trace_id().to_bytes(),
        parent.trace_id.to_bytes()
    );
    assert_eq!(s.span_context.span_id().to_string(), "b7ad6b7169203331");
    assert!(s.span_context.is_sampled() && !s.span_context.is_remote());
    assert_eq!(s.parent_span_id.to_bytes(), parent.span_id.to_bytes());
    assert!(s.parent_span_is_remote, "the parent is the sender's span");
    assert_eq!(s.name, "process q");
    assert_eq!(s.span_kind, SpanKind::Consumer);
    assert_eq!(s.status, Status::error("timeout"));
    assert!(s.end_time >= s.start_time);
    assert_eq!(attribute(s, "message_id"), Some(&Value::from("m-1")));
    assert_eq!(attribute(s, "attempt"), Some(&Value::I64(2)));
    assert_eq!(attribute(s, "correlation_id"), Some(&Value::from("c-1")));
    assert_eq!(
        attribute(s, "messaging.system"),
        Some(&Value::from("aws_sqs"))
    );
    assert_eq!(attribute(s, "error.type"), Some(&Value::from("timeout")));
    for id_field in [
        "trace_id",
        "span_id",
        "parent_span_id",
        "otel.name",
        "otel.kind",
    ] {
        assert_eq!(
            attribute(s, id_field),
            None,
            "{id_field} is the span, not an attribute"
        );
    }
    assert_eq!(s.instrumentation_scope.name(), "fleet");
}

#[test]
fn a_batch_span_links_its_messages() {
    let second = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
    let spans = exported(true, || {
        let links = format!("{PARENT} {second}");
        let _span = tracing::info_span!(
            target: "fleet_bus",
            "process",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id = "b7ad6b7169203331",
            parent_span_id = "00f067aa0ba902b7",
            links = links.as_str(),
            otel.kind = "consumer",
        );
    });
    let links: Vec<String> = spans[0]
        .links
        .iter()
        .map(|l| l.span_context.span_id().to_string())
        .collect();
    assert_eq!(links, ["00f067aa0ba902b7", "53995c3f42cd8ad8"]);
    assert!(spans[0].links.iter().all(|l| l.span_context.is_remote()));
    assert_eq!(spans[0].status, Status::Unset);
}

#[test]
fn only_sampled_spans_of_the_bus_that_name_their_ids_are_exported() {
    let spans = exported(true, || {
        drop(process_span(false));
        drop(tracing::info_span!(target: "fleet_bus", "receive", queue = "q"));
        drop(tracing::info_span!(
            target: "elsewhere",
            "process",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id = "b7ad6b7169203331",
        ));
    });
    assert!(spans.is_empty(), "{spans:?}");
}

#[test]
fn nothing_is_exported_before_a_processor_is_set() {
    assert!(exported(false, || drop(process_span(true))).is_empty());
}
