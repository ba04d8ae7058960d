//! The `process` span every handler run is in: what log lines inside it carry (message id,
//! queue, worker, attempt, correlation and trace ids) and what a span exporter sends, named as
//! the OpenTelemetry messaging conventions name them.
//!
//! The span's trace ids are fields (`trace_id`, `span_id`, `parent_span_id`, `links`, and
//! `trace_sampled = false` for a trace its producer did not sample), the same
//! ids the handler's sends propagate, so an exporter that reads them builds a trace whose parent
//! and child links are right. `fleet_bus` emits only `tracing` spans; exporting is the
//! application's choice (`fleet run` exports over OTLP when configured).

use std::fmt::Write as _;

use tracing::Span;
use tracing::field::Empty;

use super::job::{Job, JobContext};
use crate::trace::TraceContext;

/// The target of the engine's spans (log filters and exporters select on it).
pub const TARGET: &str = "fleet_bus";

/// The span of one run of a per-message handler, a child of the message's context (or, for a
/// message that came without one, the root of a new trace).
///
/// `correlation_id` is declared empty: a decoder that reads it from the message records it
/// (`Span::current().record("correlation_id", ..)`). `otel.status_code` and `error.type` are
/// recorded when the handler fails.
pub(crate) fn process(ctx: &JobContext, job: &Job, run: &TraceContext) -> Span {
    let parent = job.trace.parent.map(|p| p.span_id);
    tracing::info_span!(
        target: TARGET,
        "process",
        worker = %ctx.handler_name,
        queue = %ctx.queue,
        message_id = %job.message.id,
        attempt = job.attempt(),
        correlation_id = Empty,
        trace_id = %run.trace_id,
        span_id = %run.span_id,
        parent_span_id = parent.map(display),
        trace_sampled = (!run.sampled).then_some(false),
        otel.name = %format_args!("process {}", ctx.queue),
        otel.kind = "consumer",
        otel.status_code = Empty,
        error.type = Empty,
        messaging.system = "aws_sqs",
        messaging.destination.name = %ctx.queue,
        messaging.message.id = %job.message.id,
        messaging.operation.type = "process",
    )
}

/// The span of one run of a batch handler.
///
/// A batch has no single parent: the span is a child of the *first* message's context (so a
/// batch of one continues its message's trace exactly, and a trace that goes through a batch
/// handler stays one trace for its first message), and `links` lists every message's context as
/// space-separated `traceparent`s (the first one's included), as the messaging conventions ask
/// of a batch. It carries no `message_id` or `correlation_id` (a batch has several; a handler
/// logs the one a line is about), and `attempt` is the highest attempt in the batch.
pub(crate) fn batch(ctx: &JobContext, jobs: &[Job], run: &TraceContext) -> Span {
    let parent = jobs.first().and_then(|j| j.trace.parent).map(|p| p.span_id);
    let attempt = jobs.iter().map(Job::attempt).max().unwrap_or(1);
    let mut links = String::with_capacity(jobs.len() * 56);
    for context in jobs.iter().filter_map(|j| j.trace.parent) {
        if !links.is_empty() {
            links.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(links, "{context}");
    }
    tracing::info_span!(
        target: TARGET,
        "process",
        worker = %ctx.handler_name,
        queue = %ctx.queue,
        attempt,
        trace_id = %run.trace_id,
        span_id = %run.span_id,
        parent_span_id = parent.map(display),
        trace_sampled = (!run.sampled).then_some(false),
        links = (!links.is_empty()).then_some(links.as_str()),
        otel.name = %format_args!("process {}", ctx.queue),
        otel.kind = "consumer",
        otel.status_code = Empty,
        error.type = Empty,
        messaging.system = "aws_sqs",
        messaging.destination.name = %ctx.queue,
        messaging.operation.type = "process",
        messaging.batch.message_count = jobs.len(),
    )
}

/// Marks a span as failed with the failure's label (`timeout`, `panic`, the handler's label).
pub(crate) fn failed(span: &Span, label: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", label);
}
