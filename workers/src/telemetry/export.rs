//! Exporting the engine's spans: a `tracing` layer that turns each closed span of `fleet_bus`
//! that names its trace ids (the `process` spans) into OpenTelemetry span data, with the *same*
//! ids the engine propagated in messages, and hands it to a span processor (OTLP in
//! production, in memory in tests).
//!
//! The bus knows nothing of OpenTelemetry: it writes `trace_id`, `span_id`, `parent_span_id`,
//! `links` and the `otel.*` fields on its spans, and this layer reads them. So the exported
//! parent of a handler's span is the span that sent its message, in whatever process that was.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use fleet_bus::trace::{SpanId, TraceContext, TraceId};
use opentelemetry::trace::{
    Link, SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId,
    TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where exported spans go: empty until a processor is set (spans closed before that are not
/// exported). Clones share the processor.
#[derive(Clone, Default)]
pub struct SpanSink(Arc<OnceLock<Box<dyn SpanProcessor>>>);

impl fmt::Debug for SpanSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanSink")
            .field("exporting", &self.0.get().is_some())
            .finish()
    }
}

impl SpanSink {
    /// Sends spans to `processor` from now on; `false` (and nothing changes) if a processor was
    /// set before.
    pub fn set(&self, processor: impl SpanProcessor + 'static) -> bool {
        self.0.set(Box::new(processor)).is_ok()
    }

    /// Whether spans are exported.
    pub fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// Exports what is pending and stops the processor, waiting up to `timeout`.
    ///
    /// # Errors
    /// The processor's error (an export that failed or timed out).
    pub fn shutdown(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        match self.0.get() {
            Some(p) => p.shutdown_with_timeout(timeout),
            None => Ok(()),
        }
    }

    /// Exports what is pending.
    ///
    /// # Errors
    /// The processor's error.
    pub fn flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.get().map_or(Ok(()), |p| p.force_flush())
    }
}

/// Whether a span is one this layer exports: `fleet_bus`'s spans (the filter to put on the
/// layer, so it is not called for anything else).
pub fn is_exported(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target() == fleet_bus::consumer::span::TARGET
}

/// The layer: records the fields of the spans it sees and exports them when they close.
#[derive(Clone, Debug)]
pub struct SpanExportLayer {
    sink: SpanSink,
    scope: InstrumentationScope,
}

impl SpanExportLayer {
    /// A layer exporting to `sink`.
    pub fn new(sink: SpanSink) -> Self {
        Self {
            sink,
            scope: InstrumentationScope::builder("fleet")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }
}

impl<S> Layer<S> for SpanExportLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.sink.is_set() || !is_exported(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut recorded = Recorded::new(attrs.metadata().name());
        attrs.record(&mut recorded);
        span.extensions_mut().insert(recorded);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(recorded) = span.extensions_mut().get_mut::<Recorded>() {
            values.record(recorded);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(recorded) = span.extensions_mut().remove::<Recorded>() else {
            return;
        };
        if let (Some(data), Some(processor)) =
            (recorded.into_span_data(&self.scope), self.sink.0.get())
        {
            processor.on_end(data);
        }
    }
}

/// What a span's fields say, as they are recorded.
struct Recorded {
    start: SystemTime,
    name: Cow<'static, str>,
    kind: SpanKind,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    parent: Option<SpanId>,
    sampled: bool,
    links: Vec<TraceContext>,
    failed: bool,
    error_type: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Recorded {
    fn new(name: &'static str) -> Self {
        Self {
            start: SystemTime::now(),
            name: Cow::Borrowed(name),
            kind: SpanKind::Internal,
            trace_id: None,
            span_id: None,
            parent: None,
            sampled: true,
            links: Vec::new(),
            failed: false,
            error_type: None,
            attributes: Vec::new(),
        }
    }

    /// The span data, for a span that names its trace and span and is sampled.
    fn into_span_data(self, scope: &InstrumentationScope) -> Option<SpanData> {
        let (trace_id, span_id) = (self.trace_id?, self.span_id?);
        if !self.sampled {
            return None;
        }
        let trace_id = OtelTraceId::from_bytes(trace_id.to_bytes());
        let context = SpanContext::new(
            trace_id,
            OtelSpanId::from_bytes(span_id.to_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let mut links = SpanLinks::default();
        links.links = self
            .links
            .iter()
            .map(|l| Link::with_context(remote(l)))
            .collect();
        let status = match (self.failed, self.error_type) {
            (true, Some(t)) => Status::error(t),
            (true, None) => Status::error(""),
            (false, _) => Status::Unset,
        };
        Some(SpanData {
            span_context: context,
            parent_span_id: self.parent.map_or(OtelSpanId::INVALID, |p| {
                OtelSpanId::from_bytes(p.to_bytes())
            }),
            // A parent named in a message is another process's span.
            parent_span_is_remote: self.parent.is_some(),
            span_kind: self.kind,
            name: self.name,
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links,
            status,
            instrumentation_scope: scope.clone(),
        })
    }

    /// A field, by name: the ids and `otel.*` fields set the span itself; the rest become
    /// attributes.
    fn text(&mut self, field: &Field, value: String) {
        match field.name() {
            "trace_id" => self.trace_id = TraceId::from_hex(&value),
            "span_id" => self.span_id = SpanId::from_hex(&value),
            "parent_span_id" => self.parent = SpanId::from_hex(&value),
            "links" => {
                self.links = value
                    .split_whitespace()
                    .filter_map(TraceContext::from_traceparent)
                    .collect();
            }
            "otel.name" => self.name = Cow::Owned(value),
            "otel.kind" => self.kind = kind(&value),
            "otel.status_code" => self.failed = value.eq_ignore_ascii_case("error"),
            name => {
                if name == "error.type" {
                    self.error_type = Some(value.clone());
                }
                self.attributes.push(KeyValue::new(name, value));
            }
        }
    }
}

fn kind(text: &str) -> SpanKind {
    match text {
        "consumer" => SpanKind::Consumer,
        "producer" => SpanKind::Producer,
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        _ => SpanKind::Internal,
    }
}

fn remote(context: &TraceContext) -> SpanContext {
    SpanContext::new(
        OtelTraceId::from_bytes(context.trace_id.to_bytes()),
        OtelSpanId::from_bytes(context.span_id.to_bytes()),
        if context.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        TraceState::default(),
    )
}

impl Visit for Recorded {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "trace_sampled" {
            self.sampled = value;
            return;
        }
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests;
