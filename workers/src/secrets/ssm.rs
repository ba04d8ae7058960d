//! Secrets from SSM Parameter Store: `GetParameter` with decryption, each name cached for a TTL.
//! Concurrent reads of a name wait for one call (a lock per name), so a cold start or an expired
//! entry costs one `GetParameter`, not one per task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use tokio::time::Instant;

use super::{Secret, SecretError, SecretSource};

/// How long a value read from SSM is used before it is read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// A value (its `Debug` prints `<redacted>`) and when it was read.
#[derive(Clone, Debug)]
struct Cached {
    value: Secret,
    read_at: Instant,
}

/// One name's cache slot; its lock is held across the read, so concurrent readers make one call.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Secrets read from SSM Parameter Store (`SecureString`s, decrypted), cached per name.
#[derive(Debug)]
pub struct SsmSecrets {
    client: aws_sdk_ssm::Client,
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl SsmSecrets {
    /// Secrets read through `client` (build it with
    /// [`AwsCalls::ssm_client`](crate::aws_calls::AwsCalls::ssm_client) so its calls are
    /// counted), cached for [`DEFAULT_TTL`].
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self {
            client,
            ttl: DEFAULT_TTL,
            slots: Mutex::default(),
        }
    }

    /// The same, each value cached for `ttl` instead.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(name.to_owned()).or_default())
    }

    async fn read(&self, name: &str) -> Result<Cached, SecretError> {
        tracing::debug!(name, "reading secret from SSM");
        let output = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify(name, e))?;
        let value =
            output
                .parameter()
                .and_then(|p| p.value())
                .ok_or_else(|| SecretError::NotFound {
                    name: name.to_owned(),
                })?;
        Ok(Cached {
            value: Secret::new(value),
            read_at: Instant::now(),
        })
    }
}

#[async_trait]
impl SecretSource for SsmSecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        let slot = self.slot(name);
        let mut entry = slot.lock().await;
        if let Some(cached) = entry.as_ref()
            && cached.read_at.elapsed() < self.ttl
        {
            return Ok(cached.value.clone());
        }
        let fresh = self.read(name).await?;
        let value = fresh.value.clone();
        *entry = Some(fresh);
        Ok(value)
    }

    async fn refresh(&self, name: &str) -> Result<Secret, SecretError> {
        let asked = Instant::now();
        let slot = self.slot(name);
        let mut entry = slot.lock().await;
        // Read by another task since this one asked: as fresh as a new read would be.
        if let Some(cached) = entry.as_ref()
            && cached.read_at >= asked
        {
            return Ok(cached.value.clone());
        }
        let fresh = self.read(name).await?;
        let value = fresh.value.clone();
        *entry = Some(fresh);
        Ok(value)
    }
}

/// Every SSM failure, mapped in one place. Error texts name the parameter, never its value.
fn classify<R>(name: &str, err: SdkError<GetParameterError, R>) -> SecretError
where
    R: std::fmt::Debug,
{
    let name = name.to_owned();
    let detail = match (&err, err.message()) {
        (_, Some(message)) => format!("{}: {message}", err.code().unwrap_or("error")),
        // The error alone: the whole context would print the raw response too.
        (SdkError::ServiceError(context), None) => DisplayErrorContext(context.err()).to_string(),
        (_, None) => DisplayErrorContext(&err).to_string(),
    };
    match err.code() {
        Some("ParameterNotFound" | "ParameterVersionNotFound") => SecretError::NotFound { name },
        Some(code)
            if code.starts_with("AccessDenied")
                || code.starts_with("KMS")
                || code.starts_with("Kms")
                || matches!(
                    code,
                    "InvalidKeyId"
                        | "UnrecognizedClientException"
                        | "InvalidClientTokenId"
                        | "InvalidSignatureException"
                        | "SignatureDoesNotMatch"
                ) =>
        {
            SecretError::Refused { name, detail }
        }
        _ => SecretError::Unavailable { name, detail },
    }
}
