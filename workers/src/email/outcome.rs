//! Why an email request was not sent, and which outcome each reason is: the one place errors
//! become outcomes (`From<EmailError> for HandlerError`). No text here holds a full address.

use std::time::Duration;

use fleet_bus::consumer::HandlerError;
use fleet_bus::idempotency::IdempotencyError;

use super::compose::ComposeError;
use super::mailer::{SendError, SendErrorKind};

/// Why an email request was not sent (or not confirmed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// The request cannot become an email (template, data, size): permanent.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The provider refused or failed the send (nothing was sent), or cut it off where it may
    /// have been accepted (`SendErrorKind::Unknown`).
    #[error("{mailer} mailer: {error}")]
    Send {
        /// `ses`, `smtp` or `memory`.
        mailer: &'static str,
        /// What it said.
        error: SendError,
    },
    /// A claim of this request is held by a process that stopped between claiming and
    /// confirming the send: the provider may or may not have accepted the email. Never resent;
    /// an operator decides (`fleet dlq` shows it).
    #[error(
        "delivery unknown: request {request_id} was claimed for sending until epoch ms {claimed_until_ms} and never confirmed; it is not resent (the provider may have accepted it)"
    )]
    DeliveryUnknown {
        /// The `email.requested` id.
        request_id: String,
        /// When the stale claim's lease ended.
        claimed_until_ms: u64,
    },
    /// Another delivery of the same request is sending it now.
    #[error("request {request_id} is being sent by another delivery for {wait:?} more")]
    InProgressElsewhere {
        /// The `email.requested` id.
        request_id: String,
        /// Until its claim ends.
        wait: Duration,
    },
    /// The request's id was used before by a different request.
    #[error("request id {request_id} was used before by a different email request")]
    KeyReused {
        /// The `email.requested` id.
        request_id: String,
    },
    /// The idempotency store could not be asked; nothing was sent.
    #[error("the idempotency store could not claim the request")]
    Claim(#[source] IdempotencyError),
    /// The email went out and was marked sent; publishing `email.sent` failed (a redelivery
    /// finds it sent and publishes again).
    #[error("sent, but email.sent was not published: {0}")]
    Publish(String),
}

impl EmailError {
    /// The reason label on dead letters, retries and metrics.
    pub fn label(&self) -> &str {
        match self {
            EmailError::Compose(e) => e.label(),
            EmailError::Send { error, .. } => match error.kind {
                SendErrorKind::Transient => "send_failed",
                SendErrorKind::Rejected => "email_rejected",
                SendErrorKind::Paused => "sending_paused",
                SendErrorKind::Unknown => "delivery_unknown",
            },
            EmailError::DeliveryUnknown { .. } => "delivery_unknown",
            EmailError::InProgressElsewhere { .. } => "send_in_progress",
            EmailError::KeyReused { .. } => "idempotency_key_reused",
            EmailError::Claim(_) => "idempotency_store_unavailable",
            EmailError::Publish(_) => "publish_failed",
        }
    }
}

/// How long a paused account waits before the next try, unless the caller says.
pub const PAUSED_RETRY: Duration = Duration::from_secs(60);

/// Transient: sends that failed with nothing sent, an unavailable store, another delivery at
/// work, a failed publish. Permanent: a request that cannot become an email, a
/// rejected send, a reused id, and `delivery_unknown`.
impl From<EmailError> for HandlerError {
    fn from(e: EmailError) -> Self {
        let label = e.label().to_owned();
        let delay = match &e {
            EmailError::Send { error, .. } if error.kind == SendErrorKind::Paused => {
                Some(error.retry_after.unwrap_or(PAUSED_RETRY))
            }
            EmailError::Send { error, .. } => error.retry_after,
            EmailError::InProgressElsewhere { wait, .. } => Some(*wait + Duration::from_secs(1)),
            _ => None,
        };
        let permanent = match &e {
            EmailError::Compose(_)
            | EmailError::DeliveryUnknown { .. }
            | EmailError::KeyReused { .. } => true,
            EmailError::Send { error, .. } => {
                matches!(error.kind, SendErrorKind::Rejected | SendErrorKind::Unknown)
            }
            _ => false,
        };
        let out = if permanent {
            HandlerError::permanent(e)
        } else {
            HandlerError::transient(e)
        };
        let out = out.with_label(label);
        match delay {
            Some(d) => out.retry_after(d),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_bus::consumer::FailureKind;

    use super::*;

    fn send(error: SendError) -> HandlerError {
        EmailError::Send {
            mailer: "smtp",
            error,
        }
        .into()
    }

    #[test]
    fn each_kind_of_send_failure_has_its_outcome() {
        let t = send(SendError::transient("smtp_421", "try later"));
        assert_eq!(
            (t.kind(), t.label()),
            (FailureKind::Transient, "send_failed")
        );
        let r = send(SendError::rejected(
            "smtp_550",
            "550 <bob@example.com> unknown",
        ));
        assert_eq!(
            (r.kind(), r.label()),
            (FailureKind::Permanent, "email_rejected")
        );
        assert!(r.to_string().contains("b***@example.com"), "{r}");
        assert!(!r.to_string().contains("bob@"), "{r}");
        let p = send(SendError::paused("SendingPausedException", "paused"));
        assert_eq!(
            (p.kind(), p.label()),
            (FailureKind::Transient, "sending_paused")
        );
        assert_eq!(p.requested_delay(), Some(PAUSED_RETRY));
    }

    #[test]
    fn delivery_unknown_is_dead_lettered_and_a_concurrent_send_waits() {
        let u: HandlerError = EmailError::DeliveryUnknown {
            request_id: "r".into(),
            claimed_until_ms: 5,
        }
        .into();
        assert_eq!(
            (u.kind(), u.label()),
            (FailureKind::Permanent, "delivery_unknown")
        );
        let w: HandlerError = EmailError::InProgressElsewhere {
            request_id: "r".into(),
            wait: Duration::from_secs(4),
        }
        .into();
        assert_eq!(
            (w.kind(), w.requested_delay()),
            (FailureKind::Transient, Some(Duration::from_secs(5)))
        );
        let k: HandlerError = EmailError::KeyReused {
            request_id: "r".into(),
        }
        .into();
        assert_eq!(k.kind(), FailureKind::Permanent);
    }
}
