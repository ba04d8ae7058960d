//! Secrets the workers need at run time (the SMTP password, an API key), read from SSM Parameter
//! Store as `SecureString`s with decryption, cached with a TTL, and refreshed on demand when a
//! provider refuses the cached one. A secret's value is never logged: [`Secret`] prints as
//! `<redacted>`.

use async_trait::async_trait;

pub use crate::run::config::Secret;

mod ssm;
pub use ssm::{DEFAULT_TTL, SsmSecrets};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No parameter of that name.
    #[error("secret {name} not found")]
    NotFound {
        /// The parameter's name.
        name: String,
    },
    /// The store refused (a denied `ssm:GetParameter` or `kms:Decrypt`): an operator must fix it.
    #[error("secret {name} could not be read: {detail}")]
    Refused {
        /// The parameter's name.
        name: String,
        /// What the store said.
        detail: String,
    },
    /// The store could not answer now (throttling, the network).
    #[error("secret {name} is unavailable: {detail}")]
    Unavailable {
        /// The parameter's name.
        name: String,
        /// What went wrong.
        detail: String,
    },
}

/// Where secrets come from: SSM in production, a fixed map in tests.
#[async_trait]
pub trait SecretSource: Send + Sync + 'static {
    /// The secret `name`, from the cache while it is fresh.
    ///
    /// # Errors
    /// When it cannot be read.
    async fn get(&self, name: &str) -> Result<Secret, SecretError>;

    /// The secret `name` read again from the store, bypassing the cache (a provider refused the
    /// cached value: it may have been rotated).
    ///
    /// # Errors
    /// When it cannot be read.
    async fn refresh(&self, name: &str) -> Result<Secret, SecretError>;
}

/// Secrets from a fixed map, for tests and the embedded transport.
#[derive(Debug, Default)]
pub struct StaticSecrets {
    values: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
}

impl StaticSecrets {
    /// A source holding `pairs`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Secret::new(v)))
            .collect();
        Self {
            values: std::sync::Mutex::new(values),
        }
    }

    /// Replaces a value (a rotation, in tests).
    pub fn set(&self, name: &str, value: &str) {
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Secret::new(value));
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound {
                name: name.to_owned(),
            })
    }

    async fn refresh(&self, name: &str) -> Result<Secret, SecretError> {
        self.get(name).await
    }
}
