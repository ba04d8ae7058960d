//! Why an email could not be rendered, with the reason label each failure carries.

use std::path::PathBuf;
use std::sync::Arc;

/// Why an email could not be rendered; every variant is permanent for the message that asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// No template of that name.
    #[error("no template {template:?} in {origin}")]
    TemplateMissing {
        /// The template asked for.
        template: String,
        /// Where the templates were loaded from.
        origin: String,
    },
    /// A template directory without one of its required files.
    #[error("template {template:?} has no {file} in {origin}")]
    FileMissing {
        /// The template.
        template: String,
        /// The file it lacks.
        file: &'static str,
        /// Where the templates were loaded from.
        origin: String,
    },
    /// A template file that does not parse.
    #[error("template file {file} is invalid at line {line}")]
    TemplateInvalid {
        /// The file, as `<template>/<file>`.
        file: String,
        /// The line of the error (1-based; 0 when unknown).
        line: usize,
        /// The parser's error (shared: the template keeps it to fail every render the same way).
        #[source]
        source: Arc<minijinja::Error>,
    },
    /// The data lacks a variable the template uses.
    #[error("template {template:?} needs {variable:?}, which its data lacks")]
    DataMissing {
        /// The template.
        template: String,
        /// The variable (or expression) that was undefined.
        variable: String,
    },
    /// The data has a value the template cannot use (e.g. a string where `money` wants cents).
    #[error("template file {file} cannot render its data at line {line}")]
    DataInvalid {
        /// The file, as `<template>/<file>`.
        file: String,
        /// The line of the error (1-based; 0 when unknown).
        line: usize,
        /// The engine's error.
        #[source]
        source: minijinja::Error,
    },
    /// A rendered subject with a line break, which would inject headers.
    #[error("template {template:?} renders a subject with a line break")]
    SubjectLineBreak {
        /// The template.
        template: String,
    },
    /// A rendered subject that is empty or only whitespace.
    #[error("template {template:?} renders an empty subject")]
    SubjectEmpty {
        /// The template.
        template: String,
    },
    /// A template directory or file that cannot be read (only when loading).
    #[error("cannot read {path}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RenderError {
    /// The reason label a dead letter carries for this error.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TemplateMissing { .. } => "template_missing",
            Self::DataMissing { .. } => "template_data_missing",
            Self::DataInvalid { .. } => "template_data_invalid",
            Self::FileMissing { .. } | Self::TemplateInvalid { .. } => "template_invalid",
            Self::SubjectLineBreak { .. } | Self::SubjectEmpty { .. } => "subject_invalid",
            Self::Unreadable { .. } => "template_unreadable",
        }
    }
}
