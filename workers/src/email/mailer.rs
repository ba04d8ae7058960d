//! The one small trait every mailer implements (SES v2, SMTP, in memory), what it sends, and how
//! a send fails. A mailer never retries a send itself: the email worker decides, after it has
//! released or kept its claim (a retry inside a mailer could send twice).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// One email, rendered and addressed, ready for a provider.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The sender, as configured (`Fleet <orders@example.com>` or a bare address).
    pub from: String,
    /// The one recipient.
    pub to: String,
    /// Where replies go, when not to the sender.
    pub reply_to: Option<String>,
    /// One line, never empty.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, when there is one.
    pub html: Option<String>,
    /// The `email.requested` event's id: SMTP carries it as the `X-Fleet-Event-Id` header, SES
    /// as the `fleet-event-id` message tag, so a provider's record names the request.
    pub event_id: String,
    /// The template it was rendered from (`None` for a written-out email): an SES message tag.
    pub template: Option<String>,
}

impl fmt::Debug for OutgoingEmail {
    /// Addresses masked (`a***@example.com`) and bodies left out: debug output may be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &super::privacy::mask_address(&self.to))
            .field("event_id", &self.event_id)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// What a provider answered for an accepted email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id for it: SES's `MessageId`, the SMTP server's queue id from its final
    /// reply (or the `Message-ID` header Fleet set, when the reply names none).
    pub provider_id: String,
}

/// How a send failed, which decides the message's outcome (see `outcome.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendErrorKind {
    /// Nothing was sent and a later try may succeed: throttling, a 4xx SMTP reply, a network
    /// error, a timeout, a 5xx from the provider's API.
    Transient,
    /// Nothing was sent and no retry will change that: a rejected message, an unverified sender,
    /// a 5xx SMTP reply. The message is dead-lettered with the reason.
    Rejected,
    /// The account cannot send now (SES `SendingPaused`, an account suspension, SMTP
    /// credentials refused after a refresh): every message would fail the same way, so
    /// consumption pauses instead of dead-lettering them all.
    Paused,
    /// The provider may have accepted the email: the send was cut off by its timeout after the
    /// request went out. It is never sent again (the worker dead-letters it as
    /// `delivery_unknown`).
    Unknown,
}

/// A failed send. Its text never holds a full email address (providers echo recipients in
/// their replies; mailers pass them through [`redact_addresses`](super::privacy::redact_addresses)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct SendError {
    /// Transient, rejected or paused.
    pub kind: SendErrorKind,
    /// A short, bounded code: the SES error code (`MessageRejected`, `TooManyRequestsException`)
    /// or `smtp_<reply code>` (`smtp_421`, `smtp_550`), `smtp_network`, `smtp_tls`, `timeout`.
    pub code: String,
    /// What the provider said, addresses masked.
    pub detail: String,
    /// A delay the provider asked for, if any.
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// A failure of `kind`; `detail` is masked here, so no caller can forget.
    pub fn new(kind: SendErrorKind, code: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self {
            kind,
            code: code.into(),
            detail: super::privacy::redact_addresses(detail.as_ref()).into_owned(),
            retry_after: None,
        }
    }

    /// Nothing was sent; a later try may succeed.
    pub fn transient(code: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(SendErrorKind::Transient, code, detail)
    }

    /// Nothing was sent; no retry will change that.
    pub fn rejected(code: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(SendErrorKind::Rejected, code, detail)
    }

    /// The provider may have accepted it.
    pub fn unknown(code: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(SendErrorKind::Unknown, code, detail)
    }

    /// The account cannot send now.
    pub fn paused(code: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self::new(SendErrorKind::Paused, code, detail)
    }
}

/// What a provider says about the account, read once at startup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Account {
    /// Sends per second the provider allows (SES `GetAccount`'s `MaxSendRate`), when it says.
    pub max_send_rate: Option<f64>,
    /// `Some(false)` when the account cannot send now (SES `SendingEnabled = false`).
    pub sending_enabled: Option<bool>,
}

/// A mailer: sends one email per call, with no retry of its own.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// `ses`, `smtp` or `memory`: for logs and metric labels.
    fn name(&self) -> &'static str;

    /// Sends one email.
    ///
    /// # Errors
    /// Why it was not sent, classified (see [`SendErrorKind`]).
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, SendError>;

    /// What the provider says about the account (SES: `GetAccount`). Providers that say
    /// nothing answer the default.
    ///
    /// # Errors
    /// When the provider could not be asked; the caller falls back to its configuration.
    async fn account(&self) -> Result<Account, SendError> {
        Ok(Account::default())
    }
}
