//! Logs and the command's own messages on stderr: structured JSON for production, text for
//! people, levels from `FLEET_LOG`; and the export of the engine's spans over OTLP.
//!
//! In JSON mode every line on stderr is one JSON object: log events, with the fields of the
//! spans they are in flattened into them ([`json`]), and the command's own messages (an invalid
//! line, a message not sent, the error that ended the command), which [`say`] writes in the
//! same shape. Progress bars draw only on a terminal. In text mode, colour codes are written
//! only to a terminal (and never with `NO_COLOR` set).
//!
//! The engine's `process` spans are always on, whatever `FLEET_LOG` says: the fields they give
//! every line of a message (its id, queue, worker, attempt, trace) must not disappear when an
//! operator raises the level to `warn`. They are exported when `[observability.tracing]` names
//! an OTLP endpoint ([`export_spans`]); the export layer is installed with the logs and stays
//! idle until then.

pub mod export;
pub mod json;
pub mod otlp;

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use export::{SpanExportLayer, SpanSink};
pub use json::FlatJson;

use crate::run::config::TracingConfig;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Why spans cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The tracing configuration cannot work.
    #[error("invalid [observability.tracing]: {0}")]
    Config(String),
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[source] Box<dyn std::error::Error + Send + Sync>),
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The processor the installed export layer sends to, set by [`export_spans`].
static SPANS: OnceLock<SpanSink> = OnceLock::new();

fn sink() -> &'static SpanSink {
    SPANS.get_or_init(SpanSink::default)
}

/// The engine's `process` spans, which the log layer keeps whatever the level.
fn is_engine_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target() == fleet_bus::consumer::span::TARGET && meta.name() == "process"
}

/// Installs the global subscriber, writing to stderr, with the span export layer (idle until
/// [`export_spans`]). `FLEET_LOG` (e.g. `info`, `fleet_bus=debug`) overrides `default_level`.
pub fn init(format: LogFormat, default_level: &str) {
    let _ = FORMAT.set(format);
    let env =
        EnvFilter::try_from_env("FLEET_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let spans = filter_fn(is_engine_span).with_max_level_hint(LevelFilter::INFO);
    let logs = env.or(spans);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_filter(logs)
            .boxed(),
        LogFormat::Text => fmt.compact().with_ansi(colour()).with_filter(logs).boxed(),
    };
    let export = SpanExportLayer::new(sink().clone())
        .with_filter(filter_fn(export::is_exported).with_max_level_hint(LevelFilter::TRACE));
    let result = tracing_subscriber::registry()
        .with(fmt)
        .with(export)
        .try_init();
    // Already installed (tests, embedding): keep the existing one.
    drop(result);
}

/// Exports the engine's spans as `config` says (nothing when it names no endpoint), through the
/// layer [`init`] installed.
///
/// # Errors
/// When the endpoint cannot be used or the exporter cannot be built.
pub fn export_spans(config: &TracingConfig) -> Result<(), TelemetryError> {
    let Some(processor) = otlp::processor(config)? else {
        return Ok(());
    };
    if !sink().set(processor) {
        return Err(TelemetryError::Config(
            "spans are already being exported".to_owned(),
        ));
    }
    tracing::info!(
        endpoint = config.otlp_endpoint.as_deref().unwrap_or_default(),
        "exporting spans over OTLP"
    );
    Ok(())
}

/// Sends the spans not yet exported, waiting up to `timeout` (at the end of `fleet run`).
pub fn shutdown_export(timeout: Duration) {
    if let Err(e) = sink().shutdown(timeout) {
        tracing::warn!(error = %e, "spans not exported at shutdown");
    }
}

/// The time of a line: RFC 3339, microseconds, UTC.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Whether text logs may carry colour codes: only on a terminal, and not with `NO_COLOR` set.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// How serious a message of the command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something the command could not do.
    Error,
    /// Something left undone or worth a look.
    Warn,
    /// What happened, for the record.
    Info,
}

/// Writes one message of the command to stderr: one line of text in text mode (control
/// characters escaped: a message may quote what a producer wrote), a JSON log line
/// (`timestamp`, `level`, `message`, `target` and `fields`) in JSON mode.
pub fn say(level: Level, message: &str, fields: &[(&str, Value)]) {
    let line = line(
        FORMAT.get().copied().unwrap_or_default(),
        level,
        message,
        fields,
    );
    // stderr closed: nowhere left to say it.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn line(format: LogFormat, level: Level, message: &str, fields: &[(&str, Value)]) -> String {
    match format {
        LogFormat::Text => crate::terminal::escape(message),
        LogFormat::Json => json_line(level, message, fields),
    }
}

/// The JSON form of a message, shaped like the JSON log lines.
fn json_line(level: Level, message: &str, fields: &[(&str, Value)]) -> String {
    let mut object = Map::new();
    object.insert("timestamp".into(), Value::from(now()));
    let level = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
    };
    object.insert("level".into(), Value::from(level));
    object.insert("message".into(), Value::from(message));
    for (name, value) in fields {
        object.insert((*name).to_owned(), value.clone());
    }
    object.insert("target".into(), Value::from("fleet"));
    Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_text_mode_is_one_line_with_control_characters_escaped() {
        let text = line(
            LogFormat::Text,
            Level::Warn,
            "line 2: invalid_json: \u{1b}[2J\nmore",
            &[],
        );
        assert_eq!(text, "line 2: invalid_json: \\u{1b}[2J\\nmore");
    }

    #[test]
    fn a_message_in_json_mode_is_one_json_line() {
        let line = line(
            LogFormat::Json,
            Level::Warn,
            "line 2: invalid_json: \"quoted\"\nand more",
            &[("line", Value::from(2))],
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["line"], 2);
        assert_eq!(v["message"], "line 2: invalid_json: \"quoted\"\nand more");
    }
}
