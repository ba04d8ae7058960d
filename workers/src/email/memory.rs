//! The in-memory mailer: keeps what it sends (for `fleet demo` and tests), optionally appends each
//! email as a JSON line to a file (the demo's "file mailer"), and can be told to fail the next
//! sends to a recipient in a given way.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::mailer::{Mailer, OutgoingEmail, SendError, Sent};

/// One email the memory mailer accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The id it answered (`memory-<n>`).
    pub provider_id: String,
    /// The email as it was given.
    pub email: OutgoingEmail,
}

/// A mailer that sends nowhere: it records.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    inner: Mutex<Inner>,
    file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Inner {
    accepted: Vec<Accepted>,
    failures: HashMap<String, VecDeque<SendError>>,
    attempts: u64,
}

impl MemoryMailer {
    /// A mailer that records in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A mailer that also appends every accepted email to `path` as a JSON line (event id,
    /// template, masked recipient, subject, provider id).
    pub fn with_file(path: impl Into<PathBuf>) -> Self {
        Self {
            file: Some(path.into()),
            ..Self::default()
        }
    }

    /// The next sends to `to` fail with these errors, in order; later ones succeed.
    pub fn fail_next(&self, to: &str, errors: impl IntoIterator<Item = SendError>) {
        self.lock()
            .failures
            .entry(to.to_owned())
            .or_default()
            .extend(errors);
    }

    /// Every accepted email, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.lock().accepted.clone()
    }

    /// Sends attempted, failed ones included.
    pub fn attempts(&self) -> u64 {
        self.lock().attempts
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, SendError> {
        let mut inner = self.lock();
        inner.attempts += 1;
        if let Some(e) = inner
            .failures
            .get_mut(&email.to)
            .and_then(VecDeque::pop_front)
        {
            return Err(e);
        }
        let accepted = Accepted {
            provider_id: format!("memory-{}", inner.accepted.len() + 1),
            email: email.clone(),
        };
        if let Some(path) = &self.file {
            // One write per line, under the lock: concurrent sends never interleave lines.
            let line = serde_json::json!({
                "provider_id": accepted.provider_id,
                "event_id": email.event_id,
                "template": email.template,
                "to": super::privacy::mask_address(&email.to),
                "subject": email.subject,
            });
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
            if let Err(e) = written {
                return Err(SendError::transient(
                    "file_unwritable",
                    format!("{}: {e}", path.display()),
                ));
            }
        }
        inner.accepted.push(accepted.clone());
        drop(inner);
        Ok(Sent {
            provider_id: accepted.provider_id,
        })
    }
}
