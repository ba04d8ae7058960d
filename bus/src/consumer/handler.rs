//! What a handler receives and returns. Handlers are tower services, so they compose with layers.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower::util::BoxCloneSyncService;

use super::lease_view::LeaseView;
use crate::error::{BoxError, BusError};
use crate::message::{Message, MessageAttributes};
use crate::sns::SnsEnvelope;

/// One message handed to a handler, with where it stands in its retries.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The message as received, shared with the engine (which keeps it to dead-letter it), so
    /// handing it over copies nothing.
    pub message: Arc<Message>,
    /// This attempt, 1-based (the message's receive count).
    pub attempt: u32,
    /// The attempts the message gets: the queue's `maxReceiveCount`, or the consumer's bound.
    pub max_attempts: u32,
    /// The queue it came from.
    pub queue: Arc<str>,
    /// Cancelled when the handler must stop: its lease was lost, or shutdown's deadline passed.
    pub cancel: CancellationToken,
    /// When the message's visibility lease runs out; it moves on each confirmed extension.
    pub lease: LeaseView,
}

/// A message body and attributes with any SNS envelope removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The body as its producer published or sent it.
    pub body: String,
    /// The producer's message attributes.
    pub attributes: MessageAttributes,
    /// The envelope, when the message came through SNS without raw delivery.
    pub envelope: Option<SnsEnvelope>,
}

impl Delivery {
    /// Whether a transient failure now sends the message to the dead-letter queue.
    pub fn is_final_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// The producer's body and attributes, unwrapping an SNS envelope if there is one.
    ///
    /// # Errors
    /// `Envelope` when the body claims to be an SNS notification but is malformed.
    pub fn payload(&self) -> Result<Payload, BusError> {
        Ok(match SnsEnvelope::detect(&self.message.body)? {
            Some(env) => Payload {
                body: env.message.clone(),
                attributes: env.attributes.clone(),
                envelope: Some(env),
            },
            None => Payload {
                body: self.message.body.clone(),
                attributes: self.message.attributes.clone(),
                envelope: None,
            },
        })
    }
}

/// Whether a failure is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed later (a dependency was down, a timeout): retried with backoff.
    Transient,
    /// Will never succeed (bad input, a rule says no): dead-lettered at once.
    Permanent,
}

impl FailureKind {
    /// `transient` or `permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
        }
    }
}

/// A handler's failure: its kind decides retry or dead-letter; its label and source say why.
///
/// Each worker chooses the kind in one `From<WorkerError> for HandlerError` impl. A failed
/// [`BusError`] (a follow-up publish or send) converts with `?` by the rule of
/// [`From<BusError>`](#impl-From<BusError>-for-HandlerError): throttling, 5xx, network errors
/// and missing resources are transient, a refused request is permanent.
///
/// It displays as `transient failure (label): <cause>`; its [`source`](std::error::Error::source)
/// is the cause's own source, so a chain printer shows each level once.
#[derive(Debug)]
pub struct HandlerError {
    kind: FailureKind,
    label: Cow<'static, str>,
    retry_after: Option<Duration>,
    source: BoxError,
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self::new(FailureKind::Transient, source)
    }

    /// A failure that no retry will fix.
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self::new(FailureKind::Permanent, source)
    }

    fn new(kind: FailureKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            label: Cow::Borrowed(kind.as_str()),
            retry_after: None,
            source: source.into(),
        }
    }

    /// Names the error kind for dead-letter reasons and metrics (`invalid_json`, `smtp_down`).
    #[must_use]
    pub fn with_label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = label.into();
        self
    }

    /// Asks for this delay before the next attempt instead of the policy's backoff.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Transient or permanent.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The error kind label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The delay the handler asked for, if any.
    pub fn requested_delay(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failure ({}): {}",
            self.kind.as_str(),
            self.label,
            self.source
        )
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // `Display` already printed the cause itself: the chain goes on below it.
        self.source.source()
    }
}

impl HandlerError {
    /// The cause with its whole chain, each level once: what a dead-letter reason records.
    pub fn cause_text(&self) -> String {
        crate::error::chain_text(&*self.source)
    }
}

/// The one rule for a failed bus call inside a handler (a follow-up publish, a send): what may
/// succeed later is transient, a request the service refused is permanent.
///
/// - `Api` errors marked retryable (throttling, 5xx, timeouts, network) are transient,
///   labelled `bus_unavailable`;
/// - `NotFound` (a queue or topic missing: an operator can fix it before the attempts run out)
///   is transient, labelled `bus_not_found`;
/// - every other error (a refused request: too large, invalid parameters) is permanent,
///   labelled `bus_refused`.
impl From<BusError> for HandlerError {
    fn from(e: BusError) -> Self {
        let (kind, label) = if e.is_retryable() {
            (FailureKind::Transient, "bus_unavailable")
        } else if matches!(e, BusError::NotFound { .. }) {
            (FailureKind::Transient, "bus_not_found")
        } else {
            (FailureKind::Permanent, "bus_refused")
        };
        HandlerError::new(kind, e).with_label(label)
    }
}

/// A per-message handler: a tower service from a delivery to success or a [`HandlerError`].
pub type MessageHandler = BoxCloneSyncService<Delivery, (), HandlerError>;

/// A batch handler: one outcome per delivery, in order (like Lambda's `ReportBatchItemFailures`).
pub type BatchHandler =
    BoxCloneSyncService<Vec<Delivery>, Vec<Result<(), HandlerError>>, HandlerError>;

/// Makes a per-message handler from an async function.
pub fn handler_fn<F, Fut>(f: F) -> MessageHandler
where
    F: Fn(Delivery) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    BoxCloneSyncService::new(tower::service_fn(f))
}

/// Makes a batch handler from an async function.
pub fn batch_handler_fn<F, Fut>(f: F) -> BatchHandler
where
    F: Fn(Vec<Delivery>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Result<(), HandlerError>>, HandlerError>> + Send + 'static,
{
    BoxCloneSyncService::new(tower::service_fn(f))
}

/// The handler a consumer runs.
#[derive(Clone)]
pub enum Handler {
    /// One message at a time (many concurrently).
    PerMessage(MessageHandler),
    /// The messages of one receive together.
    Batch(BatchHandler),
}

impl From<MessageHandler> for Handler {
    fn from(h: MessageHandler) -> Self {
        Handler::PerMessage(h)
    }
}

impl From<BatchHandler> for Handler {
    fn from(h: BatchHandler) -> Self {
        Handler::Batch(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, retryable: bool) -> BusError {
        BusError::Api {
            resource: "fleet-events".into(),
            operation: "PublishBatch",
            code: code.into(),
            message: "said the service".into(),
            retryable,
            source: None,
        }
    }

    #[test]
    fn bus_errors_are_transient_when_a_later_try_can_succeed() {
        let throttled: HandlerError = api("ThrottlingException", true).into();
        assert_eq!(throttled.kind(), FailureKind::Transient);
        assert_eq!(throttled.label(), "bus_unavailable");
        let missing: HandlerError = BusError::NotFound {
            kind: "topic",
            name: "fleet-events".into(),
        }
        .into();
        assert_eq!(missing.kind(), FailureKind::Transient);
        assert_eq!(missing.label(), "bus_not_found");
        let refused: HandlerError = api("InvalidParameterValue", false).into();
        assert_eq!(refused.kind(), FailureKind::Permanent);
        assert_eq!(refused.label(), "bus_refused");
    }

    #[test]
    fn the_cause_is_printed_once_by_a_chain_printer() {
        #[derive(Debug, thiserror::Error)]
        #[error("publishing the follow-up failed")]
        struct Outer(#[source] BusError);
        let e = HandlerError::transient(Outer(api("ThrottlingException", true)));
        let chain = crate::error::chain_text(&e);
        assert_eq!(
            chain,
            "transient failure (transient): publishing the follow-up failed: PublishBatch on fleet-events failed with ThrottlingException: said the service"
        );
        assert_eq!(
            e.cause_text(),
            "publishing the follow-up failed: PublishBatch on fleet-events failed with ThrottlingException: said the service"
        );
        // A printer that does not dedupe (anyhow's `{:#}`, tracing's error chains) walks
        // `source()`: each level appears once.
        let mut levels = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            levels.push(c.to_string());
            cause = c.source();
        }
        assert_eq!(levels.len(), 2, "{levels:?}");
        assert!(!levels[1].contains("publishing the follow-up failed"));
    }
}
