//! The JSON log line: one object per event, with the fields of every span the event is in
//! flattened into it, so a line logged while a message is handled carries `message_id`, `queue`,
//! `worker`, `attempt`, `correlation_id` and `trace_id` without the code that logs it naming
//! them.
//!
//! Keys are unique. `timestamp`, `level` and `target` are the event's own; then the event's
//! fields; then each span's fields, from the innermost span out, each key only where no earlier
//! one set it (an event's field wins over a span's, an inner span's over an outer one's).
//!
//! Span fields named for exporters (`otel.*`, `messaging.*`: the OpenTelemetry names, which
//! repeat `queue` and `message_id`) stay out of log lines.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `--log-format json`. Span fields are read as the fmt layer stores
/// them with [`JsonFields`] (a JSON object per span), which the layer must use.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::from(super::now()));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        event.record(&mut Fields(&mut line));
        // The event's explicit parent if it has one, else the current span; innermost first.
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                add_absent(&mut line, stored);
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Adds a span's stored fields (a JSON object, empty text when it has none) where absent.
fn add_absent(line: &mut Map<String, Value>, stored: &str) {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(stored) else {
        return;
    };
    for (key, value) in fields {
        if key.starts_with("otel.") || key.starts_with("messaging.") {
            continue;
        }
        line.entry(key).or_insert(value);
    }
}

/// Records an event's fields as JSON values, where no key of the line is taken yet.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.entry(field.name()).or_insert(value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        // JSON numbers beyond 64 bits lose precision in most readers: text keeps them exact.
        self.put(field, Value::from(value.to_string()));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Value::from(value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(fleet_bus::chain_text(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing::field::Empty;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Map<String, Value>> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| match serde_json::from_str(l) {
                    Ok(Value::Object(o)) => o,
                    other => panic!("not a JSON object: {l} ({other:?})"),
                })
                .collect()
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<Map<String, Value>> {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        out.lines()
    }

    #[test]
    fn span_fields_are_flattened_and_event_fields_win() {
        let lines = capture(|| {
            let outer = tracing::info_span!("outer", worker = "orders", queue = "outer-q");
            let _o = outer.enter();
            let inner = tracing::info_span!(
                "process",
                queue = "q",
                message_id = "m-1",
                attempt = 2u32,
                correlation_id = Empty,
                otel.name = "process q",
                messaging.message.id = "m-1",
            );
            let _i = inner.enter();
            inner.record("correlation_id", "c-9");
            tracing::warn!(attempt = 3u32, reason = "because", "handler failed");
        });
        let line = &lines[0];
        assert_eq!(line["message"], "handler failed");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["worker"], "orders", "from the outer span");
        assert_eq!(line["queue"], "q", "the inner span wins over the outer");
        assert_eq!(line["attempt"], 3, "the event wins over the span");
        assert_eq!(line["message_id"], "m-1");
        assert_eq!(
            line["correlation_id"], "c-9",
            "recorded after the span started"
        );
        assert_eq!(line["reason"], "because");
        assert!(line.contains_key("timestamp") && line.contains_key("target"));
        assert!(!line.contains_key("spans") && !line.contains_key("span"));
        assert!(
            !line.contains_key("otel.name") && !line.contains_key("messaging.message.id"),
            "exporters' names stay out of logs"
        );
    }

    #[test]
    fn lines_have_no_duplicate_keys() {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("s", queue = "q", level = "span-level");
            let _e = span.enter();
            tracing::info!(queue = "q", target = "mine", "clash");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        for key in ["\"queue\"", "\"level\"", "\"target\"", "\"message\""] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
        let line: Map<String, Value> = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO", "the event's own level");
    }

    #[test]
    fn a_line_outside_any_span_and_an_explicit_parent() {
        let lines = capture(|| {
            tracing::info!(n = 1u64, big = u128::MAX, ok = true, "plain");
            let span = tracing::info_span!("process", message_id = "m-2");
            tracing::info!(parent: &span, "decided");
        });
        assert_eq!(lines[0]["n"], 1);
        assert_eq!(lines[0]["big"], u128::MAX.to_string());
        assert_eq!(lines[0]["ok"], true);
        assert!(!lines[0].contains_key("message_id"));
        assert_eq!(lines[1]["message_id"], "m-2");
    }

    #[test]
    fn errors_show_their_causes() {
        let lines = capture(|| {
            let e = fleet_bus::BusError::TopologyFile {
                path: "t.toml".into(),
                source: Box::new(io::Error::other("inner")),
            };
            tracing::error!(error = &e as &(dyn std::error::Error + 'static), "failed");
        });
        assert_eq!(lines[0]["error"], "cannot read topology t.toml: inner");
    }
}
