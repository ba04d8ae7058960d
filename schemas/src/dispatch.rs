//! Typed dispatch: a consumer handler that decodes each delivery and calls the function registered
//! for its type. A message that cannot be decoded or has an unsupported version is dead-lettered
//! at once with the error's label, counted and logged: never a crash, never a silent drop.
//!
//! A well-formed message of a type the router has no handler for (an analytics queue subscribed
//! to a topic that also carries `order.*`) is handled as [`Unknown`] says: dead-lettered with
//! `unknown_type` (the default), acknowledged and counted ([`Unknown::Ack`]), or given to a
//! [`Router::fallback`] handler.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fleet_bus::consumer::{Delivery, HandlerError, MessageHandler, handler_fn};
use metrics::counter;

use crate::envelope::Envelope;
use crate::error::SchemaError;
use crate::event::Event;
use crate::metrics::{DECODE_FAILURES, OTHER_TYPE, SKIPPED};
use crate::registry::Registry;

/// What a [`Router`] does with a well-formed message whose type it has no handler for. A message
/// that is malformed (not JSON, a bad header, an unsupported version of a handled type) is
/// dead-lettered whatever the choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unknown {
    /// Dead-letter it at once with the label `unknown_type`, counted in [`DECODE_FAILURES`]:
    /// for a queue that should only ever carry the router's types, where anything else is a
    /// routing mistake someone must see.
    #[default]
    DeadLetter,
    /// Acknowledge (delete) it unhandled, with a debug log and a count in [`SKIPPED`]: for a
    /// queue that receives more types than it handles (a subscription without a filter policy).
    Ack,
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
/// A decoded message bound to its handler, waiting for the delivery.
type Job = Box<dyn FnOnce(Delivery) -> HandlerFuture + Send>;

/// A handler for the messages no route takes.
type Fallback = Arc<dyn Fn(Delivery) -> HandlerFuture + Send + Sync>;

/// Routes each message to the handler registered for its type.
pub struct Router {
    name: Arc<str>,
    routes: Registry<Job>,
    unknown: Unknown,
    fallback: Option<Fallback>,
}

impl Router {
    /// A router with no routes; `name` appears in its logs.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into().into(),
            routes: Registry::new(),
            unknown: Unknown::default(),
            fallback: None,
        }
    }

    /// Chooses what happens to well-formed messages of a type without a handler (default:
    /// [`Unknown::DeadLetter`]). A [`fallback`](Self::fallback) takes precedence.
    #[must_use]
    pub fn unknown_types(mut self, choice: Unknown) -> Self {
        self.unknown = choice;
        self
    }

    /// Gives well-formed messages of a type without a handler to `f`, with the delivery as
    /// received (decode it with [`crate::decode`] if it is a Fleet type). Its outcome stands as
    /// any handler's: `Ok` acknowledges, a transient error retries, a permanent one
    /// dead-letters. Malformed messages never reach it.
    #[must_use]
    pub fn fallback<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |delivery| Box::pin(f(delivery))));
        self
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
            Err(SchemaError::UnknownType { event_type, .. }) if self.takes_unknown() => {
                self.unrouted(delivery, &event_type).await
            }
            Err(e) => {
                self.refused(&delivery, &e);
                Err(e.into())
            }
        }
    }

    /// Whether a well-formed message of a type without a route is handled rather than refused.
    fn takes_unknown(&self) -> bool {
        self.fallback.is_some() || self.unknown == Unknown::Ack
    }

    async fn unrouted(&self, delivery: Delivery, event_type: &str) -> Result<(), HandlerError> {
        if let Some(fallback) = &self.fallback {
            tracing::debug!(
                queue = %delivery.queue,
                router = %self.name,
                message_id = %delivery.message.id,
                event_type,
                "no handler for this type; the fallback handles it"
            );
            return fallback(delivery).await;
        }
        self.skipped(&delivery, event_type);
        Ok(())
    }

    fn skipped(&self, delivery: &Delivery, event_type: &str) {
        let label = crate::events::event_types()
            .into_iter()
            .map(|(t, _)| t)
            .find(|t| *t == event_type)
            .unwrap_or(OTHER_TYPE);
        counter!(SKIPPED, "queue" => delivery.queue.to_string(), "outcome" => label).increment(1);
        tracing::debug!(
            queue = %delivery.queue,
            router = %self.name,
            message_id = %delivery.message.id,
            event_type,
            "no handler for this type; acknowledged unhandled"
        );
    }

    fn refused(&self, delivery: &Delivery, error: &SchemaError) {
        let reason = error.label();
        counter!(DECODE_FAILURES, "queue" => delivery.queue.to_string(), "error_type" => reason)
            .increment(1);
        // Debug, not a warning: the engine writes the dead-letter's one warning, with the label
        // and the error text.
        tracing::debug!(
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
            .field("unknown", &self.unknown)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}
