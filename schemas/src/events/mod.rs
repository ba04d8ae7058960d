//! Fleet's event types, and [`FleetEvent`], any one of them.
//!
//! The list of types is written once, in the `fleet_events!` call below: it makes the enum, the
//! conversions, and the visitor that the decoder and the schema export walk.

mod analytics;
mod email;
mod fulfilment;
mod order;
pub(crate) mod upgrade;

pub use analytics::{AnalyticsTracked, MAX_PROPERTIES};
pub use email::{
    EmailContent, EmailRequested, EmailSent, MAX_BODY_CHARS, MAX_PROVIDER_ID_CHARS,
    MAX_SUBJECT_CHARS, MailerKind,
};
pub use fulfilment::{CancelReason, Carrier, MAX_NOTE_CHARS, OrderCancelled, OrderShipped};
pub use order::{Id, LineItem, OrderPaid, OrderPlaced, OrderRefunded};

use serde::Serialize;

use crate::event::Event;

/// Something that wants to see every event type, such as the decoder's registry or the schema
/// export.
pub(crate) trait EventVisitor {
    /// Called once per event type.
    fn visit<E>(&mut self)
    where
        E: Event,
        FleetEvent: From<E>;
}

macro_rules! fleet_events {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),+ $(,)?) => {
        /// Any Fleet event: one variant per message type. It serializes as the bare payload.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        #[non_exhaustive]
        pub enum FleetEvent {
            $($(#[$doc])* $variant($ty),)+
        }

        impl FleetEvent {
            /// The message type, such as `order.placed`.
            pub fn event_type(&self) -> &'static str {
                match self { $(FleetEvent::$variant(_) => <$ty as Event>::TYPE,)+ }
            }

            /// The payload's (current) version.
            pub fn version(&self) -> u32 {
                match self { $(FleetEvent::$variant(_) => <$ty as Event>::VERSION,)+ }
            }

            /// The event's routing keys (see [`Event::routing_keys`]).
            pub fn routing_keys(&self) -> Vec<(&'static str, String)> {
                match self { $(FleetEvent::$variant(e) => e.routing_keys(),)+ }
            }

            /// Checks the event's rules (see [`Event::validate`]).
            ///
            /// # Errors
            /// The rule the event breaks.
            pub fn validate(&self) -> Result<(), String> {
                match self { $(FleetEvent::$variant(e) => e.validate(),)+ }
            }
        }

        $(impl From<$ty> for FleetEvent {
            fn from(e: $ty) -> Self {
                FleetEvent::$variant(e)
            }
        })+

        /// Every Fleet message type with its current version, in declaration order.
        pub fn event_types() -> Vec<(&'static str, u32)> {
            vec![$((<$ty as Event>::TYPE, <$ty as Event>::VERSION),)+]
        }

        /// Shows every event type to `visitor`, in declaration order.
        pub(crate) fn for_each_event(visitor: &mut impl EventVisitor) {
            $(visitor.visit::<$ty>();)+
        }
    };
}

fleet_events! {
    /// `order.placed`.
    OrderPlaced(OrderPlaced),
    /// `order.paid`.
    OrderPaid(OrderPaid),
    /// `order.shipped`.
    OrderShipped(OrderShipped),
    /// `order.cancelled`.
    OrderCancelled(OrderCancelled),
    /// `order.refunded`.
    OrderRefunded(OrderRefunded),
    /// `email.requested`.
    EmailRequested(EmailRequested),
    /// `email.sent`.
    EmailSent(EmailSent),
    /// `analytics.tracked`.
    AnalyticsTracked(AnalyticsTracked),
}

impl crate::Envelope<FleetEvent> {
    /// The message attributes Fleet's producer sets: `type`, `version` and the routing keys.
    pub fn attributes(&self) -> fleet_bus::MessageAttributes {
        self.header.attributes(self.payload.routing_keys())
    }
}
