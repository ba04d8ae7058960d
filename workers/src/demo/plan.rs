//! What the demo publishes, and which queue should receive what: written out here, apart from
//! the topology and its filter matcher, so the demo can check the routing.

use std::collections::BTreeSet;

use fleet_bus::{AttributeValue, OutgoingMessage};

use super::DemoOptions;

const EVENT_TYPES: [&str; 8] = [
    "order.placed",
    "analytics.page_view",
    "order.paid",
    "email.requested",
    "analytics.signup",
    "order.shipped",
    "email.requested",
    "order.cancelled",
];

/// The event types each worker queue subscribes to: the filter policies of
/// `deploy/topology.toml` written out by hand, so that the demo checks the routing instead of
/// asking the matcher that did it. A queue missing here expects nothing.
pub(super) const SUBSCRIBED: [(&str, &[&str]); 3] = [
    ("fleet-email", &["email.requested"]),
    (
        "fleet-analytics",
        &[
            "order.placed",
            "analytics.page_view",
            "order.paid",
            "analytics.signup",
            "order.shipped",
            "order.cancelled",
        ],
    ),
    (
        "fleet-orders",
        &[
            "order.placed",
            "order.paid",
            "order.shipped",
            "order.cancelled",
        ],
    ),
];

/// One event the demo publishes, as the demo knows it before sending.
pub(super) struct Event {
    pub(super) id: String,
    pub(super) kind: &'static str,
    pub(super) flaky: bool,
    pub(super) message: OutgoingMessage,
}

fn event(i: usize, flaky: bool) -> Event {
    let kind = EVENT_TYPES[i % EVENT_TYPES.len()];
    let id = format!("evt-{i:05}");
    let body =
        serde_json::json!({ "id": id, "type": kind, "amount": (i * 7) % 300, "flaky": flaky });
    let message = OutgoingMessage::new(body.to_string())
        .attribute("type", AttributeValue::string(kind))
        .attribute("event_id", AttributeValue::string(&id));
    Event {
        id,
        kind,
        flaky,
        message,
    }
}

fn poison() -> Event {
    let (id, kind) = ("evt-poison", "order.placed");
    // Truncated JSON: no retry will ever parse it.
    let message = OutgoingMessage::new(format!(
        "{{\"id\": \"{id}\", \"type\": \"{kind}\", \"amount\": "
    ))
    .attribute("type", AttributeValue::string(kind))
    .attribute("event_id", AttributeValue::string(id));
    Event {
        id: id.to_owned(),
        kind,
        flaky: false,
        message,
    }
}

/// The events of a run: `options.events` of them, with the poison one in the middle.
pub(super) fn plan(options: DemoOptions) -> Vec<Event> {
    let mut events: Vec<Event> = (0..options.events)
        .map(|i| event(i, options.flaky_every > 0 && i % options.flaky_every == 7))
        .collect();
    events.insert(options.events / 2, poison());
    events
}

/// The ids of the events `queue` should receive, by [`SUBSCRIBED`].
pub(super) fn expected_at(queue: &str, events: &[Event]) -> BTreeSet<String> {
    let types = SUBSCRIBED
        .iter()
        .find(|(q, _)| *q == queue)
        .map_or(&[][..], |(_, types)| *types);
    events
        .iter()
        .filter(|e| types.contains(&e.kind))
        .map(|e| e.id.clone())
        .collect()
}
