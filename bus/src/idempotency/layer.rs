//! The tower layer that makes a per-message handler idempotent.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use super::clock::Clock;
use super::store::IdempotencyStore;
use crate::consumer::{Delivery, HandlerError, MessageHandler};

/// The labels of the layer's handler errors, which become dead-letter kinds and metric labels.
pub mod labels {
    /// Another delivery of the key is being handled: retried after that lease ends.
    pub const IN_PROGRESS: &str = "idempotency_in_progress";
    /// The key was used before with a different payload: dead-lettered.
    pub const KEY_REUSED: &str = "idempotency_key_reused";
    /// The store could not answer: retried.
    pub const STORE_UNAVAILABLE: &str = "idempotency_store_unavailable";
}

/// How long a completed record answers duplicates unless configured: Powertools' default.
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(3600);

/// What decides a delivery's idempotency: its key, and the payload a reuse of the key must match.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyed {
    /// The idempotency key (an envelope id); the layer prefixes it with its scope.
    pub key: String,
    /// The payload whose hash ([`payload_hash`](super::payload_hash)) the record keeps: take it
    /// from [`Delivery::payload`], never from the SNS envelope, which differs per publish.
    pub payload: serde_json::Value,
}

/// The function of a delivery that gives its key and payload; its error is the handler's.
pub type KeyFn = dyn Fn(&Delivery) -> Result<Keyed, HandlerError> + Send + Sync;

/// Makes a per-message handler idempotent: claim the key, run the handler, mark it completed;
/// a handler failure releases the claim; a completed key succeeds without running the handler;
/// a key in progress elsewhere is retried after that lease ends (`idempotency_in_progress`); a
/// key reused with another payload is dead-lettered (`idempotency_key_reused`); a store failure
/// is retried (`idempotency_store_unavailable`).
///
/// The record's in-progress lease is the delivery's visibility lease, renewed on each extension,
/// so another delivery of the key waits exactly as long as this one may still run.
#[derive(Clone)]
pub struct IdempotencyLayer {
    pub(super) store: Arc<dyn IdempotencyStore>,
    pub(super) scope: Arc<str>,
    pub(super) key_fn: Arc<KeyFn>,
    pub(super) expires_after: Duration,
    pub(super) clock: Clock,
}

impl IdempotencyLayer {
    /// A layer over `store`; `scope` (the worker's name) prefixes every key, so two workers
    /// receiving the same fanned-out event keep separate records.
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        scope: impl Into<String>,
        key_fn: impl Fn(&Delivery) -> Result<Keyed, HandlerError> + Send + Sync + 'static,
    ) -> Self {
        let scope: String = scope.into();
        super::counters::register(&scope);
        Self {
            store,
            scope: scope.into(),
            key_fn: Arc::new(key_fn),
            expires_after: DEFAULT_EXPIRES_AFTER,
            clock: Clock::system(),
        }
    }

    /// How long a completed record answers duplicates (at least until the work's lease ends).
    #[must_use]
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.expires_after = after;
        self
    }

    /// The clock expirations are read from ([`Clock::tokio`] for tests on a paused clock).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Wraps a handler, boxed as the engine takes it.
    pub fn wrap(&self, handler: MessageHandler) -> MessageHandler {
        BoxCloneSyncService::new(self.layer(handler))
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotent<S>;

    fn layer(&self, inner: S) -> Idempotent<S> {
        Idempotent {
            inner,
            layer: self.clone(),
        }
    }
}

/// A handler made idempotent by an [`IdempotencyLayer`].
#[derive(Clone)]
pub struct Idempotent<S> {
    inner: S,
    layer: IdempotencyLayer,
}

impl<S> Service<Delivery> for Idempotent<S>
where
    S: Service<Delivery, Response = (), Error = HandlerError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = HandlerError;
    type Future = BoxFuture<'static, Result<(), HandlerError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), HandlerError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, delivery: Delivery) -> Self::Future {
        // The service that was polled ready runs this call; its clone serves the next.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let layer = self.layer.clone();
        Box::pin(async move { layer.handle(ready, delivery).await })
    }
}
