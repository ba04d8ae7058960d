//! A decoder for a chosen set of message types: the building block of [`crate::decode`] and of
//! the typed [`crate::Router`].

use std::collections::BTreeMap;
use std::fmt;

use crate::decode::{RawMessage, typed};
use crate::envelope::Envelope;
use crate::error::SchemaError;
use crate::event::Event;
use crate::events::{EventVisitor, FleetEvent, for_each_event};

type DecodeFn<T> = Box<dyn Fn(RawMessage) -> Result<T, SchemaError> + Send + Sync>;

/// Decodes the message types registered with it, each into a `T` (for one type, `T` can be the
/// `Envelope<E>` itself).
pub struct Registry<T> {
    decoders: BTreeMap<&'static str, DecodeFn<T>>,
}

impl<T> Registry<T> {
    /// A registry that knows no types.
    pub fn new() -> Self {
        Self {
            decoders: BTreeMap::new(),
        }
    }

    /// Decodes messages of type `E` and passes them through `wrap`; registering a type again
    /// replaces the earlier entry.
    pub fn register<E: Event>(
        &mut self,
        wrap: impl Fn(Envelope<E>) -> T + Send + Sync + 'static,
    ) -> &mut Self {
        let decode = move |raw: RawMessage| typed::<E>(raw).map(&wrap);
        self.decoders.insert(E::TYPE, Box::new(decode));
        self
    }

    /// [`register`](Self::register) for building a registry in one expression.
    #[must_use]
    pub fn with<E: Event>(
        mut self,
        wrap: impl Fn(Envelope<E>) -> T + Send + Sync + 'static,
    ) -> Self {
        self.register(wrap);
        self
    }

    /// The registered message types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.decoders.keys().copied()
    }

    /// Decodes a body (raw, or an SNS notification) of one of the registered types.
    ///
    /// # Errors
    /// A [`SchemaError`]; `UnknownType` for a type that is not registered.
    pub fn decode(&self, body: &str) -> Result<T, SchemaError> {
        let raw = RawMessage::parse(body)?;
        match self.decoders.get(raw.event_type.as_str()) {
            Some(decode) => decode(raw),
            None => Err(SchemaError::UnknownType {
                event_type: raw.event_type,
                known: self.types().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

impl Registry<Envelope<FleetEvent>> {
    /// A registry of every Fleet event type.
    pub fn fleet() -> Self {
        struct All(Registry<Envelope<FleetEvent>>);
        impl EventVisitor for All {
            fn visit<E>(&mut self)
            where
                E: Event,
                FleetEvent: From<E>,
            {
                self.0.register::<E>(|e| e.map(FleetEvent::from));
            }
        }
        let mut all = All(Registry::new());
        for_each_event(&mut all);
        all.0
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}
