//! Typed dispatch: a consumer handler that decodes each delivery and calls the function registered
//! for its type. A message that cannot be decoded, has a type nobody registered or an unsupported
//! version is dead-lettered at once with the error's label, counted and logged: never a crash,
//! never a silent drop.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fleet_bus::consumer::{Delivery, HandlerError, MessageHandler, handler_fn};
use metrics::counter;

use crate::envelope::Envelope;
use crate::error::SchemaError;
use crate::event::Event;
use crate::registry::Registry;

/// Metric: messages a router refused to hand to a handler, by `queue` and `reason` (the label).
pub const DECODE_FAILURES: &str = "fleet_decode_failures_total";

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
/// A decoded message bound to its handler, waiting for the delivery.
type Job = Box<dyn FnOnce(Delivery) -> HandlerFuture + Send>;

/// Routes each message to the handler registered for its type.
pub struct Router {
    name: Arc<str>,
    routes: Registry<Job>,
}

impl Router {
    /// A router with no routes; `name` appears in its logs.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into().into(),
            routes: Registry::new(),
        }
    }

    /// Sends messages of type `E` (current or previous version) to `f`; registering a type again
    /// replaces the earlier handler.
    #[must_use]
    pub fn on<E, F, Fut>(mut self, f: F) -> Self
    where
        E: Event,
        F: Fn(Envelope<E>, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.routes.register::<E>(move |envelope| {
            let f = Arc::clone(&f);
            let job: Job = Box::new(move |delivery| Box::pin(f(envelope, delivery)));
            job
        });
        self
    }

    /// The message types this router handles, sorted.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.types()
    }

    /// The router as a consumer handler.
    pub fn into_handler(self) -> MessageHandler {
        let router = Arc::new(self);
        handler_fn(move |delivery: Delivery| {
            let router = Arc::clone(&router);
            async move { router.handle(delivery).await }
        })
    }

    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        match self.routes.decode(&delivery.message.body) {
            Ok(job) => job(delivery).await,
            Err(e) => {
                self.refused(&delivery, &e);
                Err(e.into())
            }
        }
    }

    fn refused(&self, delivery: &Delivery, error: &SchemaError) {
        let reason = error.label();
        counter!(DECODE_FAILURES, "queue" => delivery.queue.to_string(), "reason" => reason)
            .increment(1);
        tracing::warn!(
            queue = %delivery.queue,
            router = %self.name,
            message_id = %delivery.message.id,
            reason,
            error = %error.report(),
            "message cannot be decoded; it goes to the dead-letter queue"
        );
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("name", &self.name)
            .field("types", &self.routes)
            .finish()
    }
}
