//! Email templates rendered locally: the pure core of the email worker's rendering.
//!
//! A template is a directory `<name>/` holding `subject.txt`, `text.txt` and an optional
//! `html.html`. Only the HTML part is auto-escaped; the subject and the text are plain text and
//! must stay as written. Undefined variables are errors (a missing variable must never become an
//! empty string in a sent email), and a subject must be one non-empty line, since it becomes a
//! header and a line break in it would inject headers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde_json::Map;

use super::error::RenderError;
use super::money::money_filter;

/// The subject part of a template directory.
pub const SUBJECT_FILE: &str = "subject.txt";
/// The plain-text part of a template directory.
pub const TEXT_FILE: &str = "text.txt";
/// The optional HTML part of a template directory (the only auto-escaped one).
pub const HTML_FILE: &str = "html.html";

/// One email rendered from a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject: one line, trimmed, never empty.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, when the template has one.
    pub html: Option<String>,
}

/// What loading found in one template directory.
#[derive(Debug, Clone)]
enum Entry {
    /// Every part parsed; whether it has an HTML part.
    Ready { html: bool },
    /// A required file is missing.
    FileMissing(&'static str),
    /// A file does not parse (kept so that rendering this template fails with the reason while
    /// the others still render).
    Invalid(Arc<minijinja::Error>),
}

/// A set of compiled email templates.
pub struct Templates {
    env: Environment<'static>,
    origin: String,
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Templates {
    /// Loads every template directory under `dir` (each subdirectory is one template; hidden
    /// ones are skipped). A template that does not parse is kept and fails when rendered.
    ///
    /// # Errors
    ///
    /// [`RenderError::Unreadable`] when `dir` or a template file cannot be read.
    pub fn load(dir: &Path) -> Result<Self, RenderError> {
        let unreadable = |path: &Path| {
            let path = path.to_owned();
            move |source| RenderError::Unreadable { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable(dir))? {
            let path = entry.map_err(unreadable(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let name = name.to_owned();
            for file in [SUBJECT_FILE, TEXT_FILE, HTML_FILE] {
                let file_path = path.join(file);
                match std::fs::read_to_string(&file_path) {
                    Ok(source) => files.push((format!("{name}/{file}"), source)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Recorded so that the template exists, and fails naming the file.
                        files.push((format!("{name}/"), String::new()));
                    }
                    Err(e) => return Err(unreadable(&file_path)(e)),
                }
            }
        }
        Ok(Self::from_files(dir.display().to_string(), files))
    }

    /// Compiles templates from in-memory files named `<template>/<file>` (e.g.
    /// `welcome/subject.txt`); `origin` names where they came from in errors.
    pub fn from_files<N, S>(
        origin: impl Into<String>,
        files: impl IntoIterator<Item = (N, S)>,
    ) -> Self
    where
        N: Into<String>,
        S: Into<String>,
    {
        let mut env = environment();
        let mut sources: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (path, source) in files {
            let path: String = path.into();
            let (template, file) = path.split_once('/').unwrap_or((&path, ""));
            let parts = sources.entry(template.to_owned()).or_default();
            if !file.is_empty() {
                parts.insert(file.to_owned(), source.into());
            }
        }
        let entries = sources
            .into_iter()
            .map(|(name, parts)| {
                let entry = compile(&mut env, &name, parts);
                (name, entry)
            })
            .collect();
        Self {
            env,
            origin: origin.into(),
            entries,
        }
    }

    /// The names of the templates, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Renders template `name` with `data`.
    ///
    /// # Errors
    ///
    /// A [`RenderError`] saying why: the template is missing or invalid, the data lacks a
    /// variable or has an unusable value, or the subject is empty or has a line break.
    pub fn render(
        &self,
        name: &str,
        data: &Map<String, serde_json::Value>,
    ) -> Result<Rendered, RenderError> {
        let html = match self.entries.get(name) {
            None => {
                return Err(RenderError::TemplateMissing {
                    template: name.to_owned(),
                    origin: self.origin.clone(),
                });
            }
            Some(Entry::FileMissing(file)) => {
                return Err(RenderError::FileMissing {
                    template: name.to_owned(),
                    file,
                    origin: self.origin.clone(),
                });
            }
            Some(Entry::Invalid(e)) => return Err(invalid(Arc::clone(e))),
            Some(Entry::Ready { html }) => *html,
        };
        let subject = self.part(name, SUBJECT_FILE, data)?;
        let subject = checked_subject(name, &subject)?.to_owned();
        let text = self.part(name, TEXT_FILE, data)?;
        let html = if html {
            Some(self.part(name, HTML_FILE, data)?)
        } else {
            None
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    fn part(
        &self,
        name: &str,
        file: &str,
        data: &Map<String, serde_json::Value>,
    ) -> Result<String, RenderError> {
        let path = format!("{name}/{file}");
        let template = self.env.get_template(&path).map_err(invalid)?;
        template
            .render(Value::from(Serde(data)))
            .map_err(|e| match e.kind() {
                ErrorKind::UndefinedError => RenderError::DataMissing {
                    template: name.to_owned(),
                    variable: missing_variable(&e, &template, data),
                },
                _ => render_failure(&path, e),
            })
    }
}

/// The environment every template is compiled in.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Escape by the part, never by a guess: HTML escaped, subject and text verbatim.
    env.set_auto_escape_callback(|path| {
        if path.ends_with(HTML_FILE) {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Debug info records which expression was undefined, to name it in the error.
    env.set_debug(true);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.add_filter("money", money_filter);
    env
}

/// Compiles one template's parts into `env`.
fn compile(
    env: &mut Environment<'static>,
    name: &str,
    mut parts: BTreeMap<String, String>,
) -> Entry {
    for required in [SUBJECT_FILE, TEXT_FILE] {
        if !parts.contains_key(required) {
            return Entry::FileMissing(required);
        }
    }
    let html = parts.contains_key(HTML_FILE);
    for file in [SUBJECT_FILE, TEXT_FILE, HTML_FILE] {
        let Some(source) = parts.remove(file) else {
            continue;
        };
        if let Err(e) = env.add_template_owned(format!("{name}/{file}"), source) {
            return Entry::Invalid(Arc::new(e));
        }
    }
    Entry::Ready { html }
}

fn invalid(source: impl Into<Arc<minijinja::Error>>) -> RenderError {
    let source = source.into();
    RenderError::TemplateInvalid {
        file: source.name().unwrap_or_default().to_owned(),
        line: source.line().unwrap_or(0),
        source,
    }
}

/// Sorts an error (other than undefined) of rendering `path` into unusable data or a bad template.
fn render_failure(path: &str, e: minijinja::Error) -> RenderError {
    match e.kind() {
        ErrorKind::SyntaxError
        | ErrorKind::UnknownFilter
        | ErrorKind::UnknownTest
        | ErrorKind::UnknownFunction => invalid(e),
        _ => RenderError::DataInvalid {
            file: path.to_owned(),
            line: e.line().unwrap_or(0),
            source: e,
        },
    }
}

/// What an undefined error is about (debug info is on, so the error points at an expression):
/// an absent top-level variable the expression uses; else the expression itself when it is a
/// path such as `item.colour`; else (a filter call such as `money(currency)`, whose span leaves
/// out its input) an absent variable used on the error's line.
fn missing_variable(
    e: &minijinja::Error,
    template: &minijinja::Template<'_, '_>,
    data: &Map<String, serde_json::Value>,
) -> String {
    let source = e.template_source().unwrap_or_default();
    let expression = e
        .range()
        .and_then(|range| source.get(range))
        .map(str::trim)
        .unwrap_or_default();
    let line = e
        .line()
        .and_then(|n| source.lines().nth(n.saturating_sub(1)))
        .unwrap_or_default();
    let mut absent: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !data.contains_key(v))
        .collect();
    absent.sort();
    let is_path = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
    };
    if let Some(v) = absent.iter().find(|v| mentions(expression, v)) {
        v.clone()
    } else if is_path(expression) {
        expression.to_owned()
    } else if let Some(v) = absent.iter().find(|v| mentions(line, v)) {
        v.clone()
    } else if !expression.is_empty() {
        expression.to_owned()
    } else {
        absent
            .into_iter()
            .next()
            .unwrap_or_else(|| "an undefined variable".to_owned())
    }
}

/// Whether `expression` uses the identifier `name` (not merely a longer name containing it).
fn mentions(expression: &str, name: &str) -> bool {
    expression
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == name)
}

/// The subject trimmed, refused when empty or when it has a line break.
fn checked_subject<'a>(name: &str, subject: &'a str) -> Result<&'a str, RenderError> {
    let subject = subject.trim();
    let line_break = |c: char| {
        matches!(
            c,
            '\r' | '\n' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
    };
    if subject.contains(line_break) {
        return Err(RenderError::SubjectLineBreak {
            template: name.to_owned(),
        });
    }
    if subject.is_empty() {
        return Err(RenderError::SubjectEmpty {
            template: name.to_owned(),
        });
    }
    Ok(subject)
}
