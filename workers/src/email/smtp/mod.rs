//! The SMTP mailer: lettre's pooled async transport on tokio with rustls, `STARTTLS` required by
//! default, the password from a [`SecretSource`], an outer timeout around every send (lettre's
//! own covers only the connect), and every failure classified into a [`SendError`].

mod classify;
pub mod message;
pub mod settings;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use self::classify::{Failure, classify};
pub use self::settings::{SmtpSettings, SmtpTls};
use super::mailer::{Account, Mailer, OutgoingEmail, SendError, SendErrorKind, Sent};
use crate::secrets::{Secret, SecretError, SecretSource};

/// Why an SMTP mailer could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// A setting that cannot work (named relative to `[email.smtp]`).
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `ca_file` could not be read or holds no certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TLS settings could not be built.
    #[error("tls: {0}")]
    Tls(String),
    /// The password could not be read.
    #[error("password_parameter: {0}")]
    Secret(#[source] SecretError),
}

/// A mailer that sends through an SMTP server.
pub struct SmtpMailer {
    settings: SmtpSettings,
    secrets: Arc<dyn SecretSource>,
    /// Built once: reading `ca_file` and the system's roots is not free.
    tls: Tls,
    current: Mutex<Current>,
    /// Held while the password is refreshed, so concurrent refusals refresh it once.
    refreshing: tokio::sync::Mutex<()>,
}

/// The transport in use and the password it was built with.
#[derive(Clone)]
struct Current {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    password: Option<Secret>,
    /// Bumped at each refresh: a send refused with an older password retries with the new one
    /// rather than refreshing again.
    password_version: u64,
}

impl fmt::Debug for SmtpMailer {
    /// The host, port, TLS mode and user; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .settings
            .username
            .as_deref()
            .map(super::privacy::redact_addresses);
        f.debug_struct("SmtpMailer")
            .field("host", &self.settings.host)
            .field("port", &self.settings.effective_port())
            .field("tls", &self.settings.tls)
            .field("username", &user)
            .field("password_parameter", &self.settings.password_parameter)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `settings`, reading the password (when `password_parameter` is set) from
    /// `secrets` now; it connects on the first send.
    ///
    /// # Errors
    /// When a setting is invalid, `ca_file` cannot be read, or the password cannot be read.
    pub async fn new(
        settings: SmtpSettings,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<Self, SmtpError> {
        settings.validate()?;
        let tls = tls(&settings)?;
        let password = match &settings.password_parameter {
            Some(name) => Some(secrets.get(name).await.map_err(SmtpError::Secret)?),
            None => None,
        };
        let transport = transport(&settings, &tls, password.as_ref());
        Ok(Self {
            settings,
            secrets,
            tls,
            current: Mutex::new(Current {
                transport,
                password,
                password_version: 0,
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings it sends with.
    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One try on `current`'s transport, cut at `send_timeout`.
    async fn attempt(
        &self,
        current: &Current,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<Response, Failure> {
        let mut unfinished = Unfinished {
            mailer: self,
            password_version: current.password_version,
            finished: false,
        };
        let send = current.transport.send_raw(envelope, raw);
        let result = tokio::time::timeout(self.settings.send_timeout, send).await;
        unfinished.finished = result.is_ok();
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(classify(&e)),
            // The message may have gone out and the server may accept it after we stopped
            // waiting: never sent again.
            Err(_) => Err(Failure::Send(SendError::unknown(
                "timeout",
                format!(
                    "no reply within {}",
                    humantime::format_duration(self.settings.send_timeout)
                ),
            ))),
        }
    }

    /// A new pool with the same password, unless the password changed meanwhile (then the
    /// transport was already replaced).
    fn replace_transport(&self, password_version: u64) {
        let mut current = self.lock();
        if current.password_version == password_version {
            current.transport = transport(&self.settings, &self.tls, current.password.as_ref());
        }
    }

    /// The transport to retry with after a refusal on `refused`: one built with a password read
    /// again from the store, or the one another send already rebuilt since.
    async fn refreshed(&self, refused: &Current) -> Result<Current, SendError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let now = self.lock().clone();
        if now.password_version != refused.password_version {
            return Ok(now);
        }
        let Some(name) = &self.settings.password_parameter else {
            return Err(SendError::paused(
                "smtp_auth",
                "the server requires authentication and no username/password_parameter is set",
            ));
        };
        let password = self.secrets.refresh(name).await.map_err(|e| match e {
            SecretError::Unavailable { .. } => {
                SendError::transient("secret_unavailable", e.to_string())
            }
            other => SendError::paused("smtp_auth", other.to_string()),
        })?;
        tracing::info!(
            parameter = %name,
            "smtp: the server refused the password; read it again from the store"
        );
        let mut current = self.lock();
        current.transport = transport(&self.settings, &self.tls, Some(&password));
        current.password = Some(password);
        current.password_version += 1;
        Ok(current.clone())
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, SendError> {
        let (message, message_id) = message::build(email)?;
        let envelope = message.envelope().clone();
        let raw = message.formatted();
        let current = self.lock().clone();
        let response = match self.attempt(&current, &envelope, &raw).await {
            Ok(response) => response,
            Err(Failure::Send(e)) => return Err(e),
            Err(Failure::AuthRefused { .. }) => {
                // Authentication fails before MAIL FROM: nothing was sent, trying again is safe.
                let renewed = self.refreshed(&current).await?;
                match self.attempt(&renewed, &envelope, &raw).await {
                    Ok(response) => response,
                    Err(Failure::Send(e)) => return Err(e),
                    Err(Failure::AuthRefused { detail }) => {
                        return Err(SendError::paused("smtp_auth", detail));
                    }
                }
            }
        };
        let provider_id = message::queue_id(response.message()).unwrap_or(message_id);
        Ok(Sent { provider_id })
    }

    /// Connects, negotiates TLS and authenticates once, leaving the connection in the pool: a
    /// wrong host, certificate or password shows at startup, and the first sends do not pay for
    /// a handshake (which would bunch them behind it). SMTP says nothing of a send rate.
    async fn account(&self) -> Result<Account, SendError> {
        let current = self.lock().clone();
        match self.probe(&current).await {
            // Refused: the password may have been rotated since (the pause probe relies on
            // this to resume); read it again once, as a send would.
            Err(e) if e.kind == SendErrorKind::Paused && e.code == "smtp_auth" => {
                let renewed = self.refreshed(&current).await?;
                self.probe(&renewed).await
            }
            other => other,
        }
    }
}

impl SmtpMailer {
    /// Connects, negotiates TLS and authenticates on `current`'s pool.
    async fn probe(&self, current: &Current) -> Result<Account, SendError> {
        let transport = current.transport.clone();
        match tokio::time::timeout(self.settings.send_timeout, transport.test_connection()).await {
            Ok(Ok(true)) => Ok(Account::default()),
            Ok(Ok(false)) => Err(SendError::transient(
                "smtp_network",
                "the server did not answer NOOP",
            )),
            Ok(Err(e)) => Err(match classify(&e) {
                Failure::Send(e) => e,
                Failure::AuthRefused { detail } => SendError::paused("smtp_auth", detail),
            }),
            Err(_) => Err(SendError::transient(
                "connect_timeout",
                "no connection within send_timeout",
            )),
        }
    }
}

/// Replaces the pool when a send is abandoned (cut by `send_timeout`, or its caller gave up):
/// lettre's pool takes the abandoned connection back as if it were idle, with the server's reply
/// still unread, and the next send on it would read every reply one command late. The old pool
/// closes its connections once the abandoned send has let go of it.
struct Unfinished<'a> {
    mailer: &'a SmtpMailer,
    password_version: u64,
    finished: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.mailer.replace_transport(self.password_version);
        }
    }
}

/// The TLS mode with its parameters: the system's roots plus `ca_file`'s certificates, for the
/// name `host`.
fn tls(settings: &SmtpSettings) -> Result<Tls, SmtpError> {
    if settings.tls == SmtpTls::None {
        return Ok(Tls::None);
    }
    let host = settings
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &settings.ca_file {
        let ca_error = |reason: String| SmtpError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(ca_error("no PEM certificate in it".to_owned()));
        }
        let certificate = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    let parameters = builder
        .build_rustls()
        .map_err(|e| SmtpError::Tls(e.to_string()))?;
    Ok(match settings.tls {
        SmtpTls::Implicit => Tls::Wrapper(parameters),
        SmtpTls::Starttls | SmtpTls::None => Tls::Required(parameters),
    })
}

/// A new pooled transport; the password, if any, goes only into lettre's credentials.
fn transport(
    settings: &SmtpSettings,
    tls: &Tls,
    password: Option<&Secret>,
) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.trim())
        .port(settings.effective_port())
        .tls(tls.clone())
        .timeout(Some(settings.connect_timeout))
        .pool_config(PoolConfig::new().max_size(settings.pool_max));
    if let Some(name) = &settings.hello_name {
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    if let (Some(user), Some(password)) = (&settings.username, password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    builder.build()
}
