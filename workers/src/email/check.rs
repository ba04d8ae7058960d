//! `fleet templates check`: every template rendered against its own `sample.json`, so that a
//! template that does not parse, or needs data its producers do not send, fails before deploy.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::RenderError;
use super::render::{Rendered, Templates};

/// The sample data file of a template directory.
pub const SAMPLE_FILE: &str = "sample.json";

/// Why a template failed its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The sample data cannot be read.
    #[error("cannot read sample data {path}")]
    SampleUnreadable {
        /// The sample file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The sample data is not a JSON object.
    #[error("sample data {path} is not a json object")]
    SampleInvalid {
        /// The sample file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The template does not render its sample.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The check of one template.
#[derive(Debug)]
pub struct TemplateCheck {
    /// The template's name.
    pub name: String,
    /// What it rendered, or why it failed.
    pub outcome: Result<Rendered, CheckError>,
}

impl fmt::Display for TemplateCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(r) => {
                write!(
                    f,
                    "ok    {}  subject {:?}  text {} B",
                    self.name,
                    r.subject,
                    r.text.len()
                )?;
                match &r.html {
                    Some(html) => write!(f, "  html {} B", html.len()),
                    None => write!(f, "  no html"),
                }
            }
            Err(e) => write!(f, "FAIL  {}  {}", self.name, fleet_bus::chain_text(e)),
        }
    }
}

/// Loads the templates under `dir` and renders each against its `sample.json`.
///
/// # Errors
///
/// [`RenderError::Unreadable`] when the directory cannot be read; a template that fails is
/// reported in its [`TemplateCheck`] instead.
pub fn check_dir(dir: &Path) -> Result<Vec<TemplateCheck>, RenderError> {
    let templates = Templates::load(dir)?;
    Ok(templates
        .names()
        .map(|name| TemplateCheck {
            name: name.to_owned(),
            outcome: check_one(&templates, dir, name),
        })
        .collect())
}

fn check_one(templates: &Templates, dir: &Path, name: &str) -> Result<Rendered, CheckError> {
    let path = dir.join(name).join(SAMPLE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| CheckError::SampleUnreadable {
        path: path.clone(),
        source,
    })?;
    let sample: Map<String, Value> =
        serde_json::from_str(&text).map_err(|source| CheckError::SampleInvalid { path, source })?;
    Ok(templates.render(name, &sample)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates")
    }

    #[test]
    fn every_shipped_template_renders_its_sample() {
        let checks = check_dir(&shipped()).unwrap();
        assert!(
            checks.iter().any(|c| c.name == "order_confirmation"),
            "{checks:?}"
        );
        for check in &checks {
            assert!(check.outcome.is_ok(), "{check}");
        }
    }

    #[test]
    fn the_order_confirmation_sample_renders_money_and_items() {
        let checks = check_dir(&shipped()).unwrap();
        let check = checks
            .iter()
            .find(|c| c.name == "order_confirmation")
            .unwrap();
        let rendered = check.outcome.as_ref().unwrap();
        assert!(rendered.subject.contains("o-1001"), "{}", rendered.subject);
        assert!(rendered.text.contains("53.43 EUR"), "{}", rendered.text);
        assert!(rendered.text.contains("TEE-BLK-M"), "{}", rendered.text);
        let html = rendered.html.as_deref().unwrap();
        assert!(html.contains("53.43 EUR"), "{html}");
    }
}
