//! Logs and the command's own messages on stderr: structured JSON for production, text for
//! people, levels from `FLEET_LOG`.
//!
//! In JSON mode every line on stderr is one JSON object: log events, and the command's own
//! messages (an invalid line, a message not sent, the error that ended the command), which
//! [`say`] writes in the same shape. Progress bars draw only on a terminal. In text mode, colour
//! codes are written only to a terminal (and never with `NO_COLOR` set).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the global subscriber, writing to stderr. `FLEET_LOG` (e.g. `info`,
/// `fleet_bus=debug`) overrides `default_level`.
pub fn init(format: LogFormat, default_level: &str) {
    let _ = FORMAT.set(format);
    let filter =
        EnvFilter::try_from_env("FLEET_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.compact().with_ansi(colour()).try_init(),
    };
    // Already installed (tests, embedding): keep the existing one.
    drop(result);
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
    object.insert(
        "timestamp".into(),
        Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
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
