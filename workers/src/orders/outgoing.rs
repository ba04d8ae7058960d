//! The events an applied order event causes: an order confirmation email (for `order.placed`,
//! when the customer's address is known) and one `analytics.tracked` per applied event.
//!
//! Their ids are derived from the cause's id (`<cause id>:email`, `<cause id>:analytics`), so the
//! same cause always yields the same ids and consumers downstream deduplicate a republished
//! event by its id. Their `occurred_at` is the cause's, so the same cause yields the same bytes.

use fleet_schemas::codes::{Email, TemplateName};
use fleet_schemas::text::Line;
use fleet_schemas::{
    AnalyticsTracked, EmailContent, EmailRequested, Envelope, Event, FleetEvent, Header,
    MAX_ID_CHARS, OrderPlaced,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::machine::OrderEvent;
use super::order::Order;

/// The `producer` of the events the orders worker sends.
pub const PRODUCER: &str = "orders";
/// The template of the order confirmation email.
pub const CONFIRMATION_TEMPLATE: &str = "order_confirmation";
/// The id suffix of the confirmation email.
const EMAIL_SUFFIX: &str = "email";
/// The id suffix of the analytics event.
const ANALYTICS_SUFFIX: &str = "analytics";
/// The id suffix of the `email.sent` the email worker publishes for a request (`<request
/// id>:sent`), through [`derived_envelope`].
pub const EMAIL_SENT_SUFFIX: &str = "sent";

/// The events `cause` causes once applied, making `order`.
pub fn caused_by(cause: &Envelope<OrderEvent>, order: &Order) -> Vec<Envelope<FleetEvent>> {
    let mut out = Vec::with_capacity(2);
    if let OrderEvent::Placed(placed) = &cause.payload
        && let Some(to) = &placed.customer_email
    {
        out.push(derived(
            cause,
            EMAIL_SUFFIX,
            confirmation(to, placed).into(),
        ));
    }
    out.push(derived(
        cause,
        ANALYTICS_SUFFIX,
        analytics(cause, order).into(),
    ));
    out
}

fn confirmation(to: &Email, placed: &OrderPlaced) -> EmailRequested {
    EmailRequested {
        to: to.clone(),
        reply_to: None,
        content: EmailContent::Template {
            template: TemplateName::new(CONFIRMATION_TEMPLATE)
                .expect("the confirmation template's name is a valid template name"),
            data: confirmation_data(placed),
        },
    }
}

fn confirmation_data(placed: &OrderPlaced) -> Map<String, Value> {
    let items: Vec<Value> = placed
        .items
        .iter()
        .map(|i| json!({"sku": i.sku, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}))
        .collect();
    let mut data = Map::new();
    data.insert("order_id".into(), json!(placed.order_id));
    data.insert("customer_id".into(), json!(placed.customer_id));
    data.insert("items".into(), Value::Array(items));
    data.insert("total_cents".into(), json!(placed.total_cents));
    data.insert("currency".into(), json!(placed.currency));
    data
}

/// `order_<verb>` about the customer, at the cause's time: `order_paid` and `order_refunded`
/// carry `amount_cents` and `currency` (revenue is paid minus refunded, per currency), every one
/// carries `order_id` and the order's `status` after the event.
fn analytics(cause: &Envelope<OrderEvent>, order: &Order) -> AnalyticsTracked {
    let verb = cause.payload.kind().as_str();
    let mut properties = Map::new();
    properties.insert("order_id".into(), json!(order.order_id()));
    properties.insert("status".into(), json!(order.status.as_str()));
    match &cause.payload {
        OrderEvent::Placed(p) => {
            properties.insert("total_cents".into(), json!(p.total_cents));
            properties.insert("currency".into(), json!(p.currency));
        }
        OrderEvent::Paid(p) => {
            properties.insert("amount_cents".into(), json!(p.amount_cents));
            properties.insert("currency".into(), json!(p.currency));
        }
        OrderEvent::Refunded(r) => {
            properties.insert("amount_cents".into(), json!(r.amount_cents));
            properties.insert("currency".into(), json!(r.currency));
        }
        OrderEvent::Shipped(s) => {
            properties.insert("carrier".into(), json!(s.carrier));
        }
        OrderEvent::Cancelled(c) => {
            properties.insert("reason".into(), json!(c.reason));
        }
    }
    AnalyticsTracked {
        name: Line::new(format!("order_{verb}")).expect("order_<verb> is a short single line"),
        subject: Line::new(order.customer_id())
            .expect("a customer id (at most 64 characters) is a valid subject"),
        properties,
        timestamp: cause.header.occurred_at,
    }
}

/// An envelope for `event` caused by `cause`, with an id derived from the cause's.
fn derived(cause: &Envelope<OrderEvent>, suffix: &str, event: FleetEvent) -> Envelope<FleetEvent> {
    Envelope {
        header: Header {
            id: derived_id(&cause.header.id, suffix),
            event_type: event.event_type().to_owned(),
            version: event.version(),
            occurred_at: cause.header.occurred_at,
            correlation_id: None,
            causation_id: None,
            producer: PRODUCER.to_owned(),
        },
        payload: event,
    }
    .caused_by(cause)
}

/// The id of the confirmation `email.requested` that the `order.placed` event `placed_id` causes.
pub fn confirmation_id(placed_id: &str) -> String {
    derived_id(placed_id, EMAIL_SUFFIX)
}

/// `event` as a message from `producer` caused by `cause`, by the same rule as the orders worker's
/// own: the id is [`derived_id`] of the cause's id and `suffix`, the time is the cause's, and the
/// correlation is the cause's. The same cause and suffix always give the same message, so a
/// consumer deduplicates a second publish by its id. The email worker publishes `email.sent`
/// with it: `derived_envelope(&request, email::worker::PRODUCER, EMAIL_SENT_SUFFIX, sent)`.
pub fn derived_envelope<C, E: Event>(
    cause: &Envelope<C>,
    producer: &str,
    suffix: &str,
    event: E,
) -> Envelope<E> {
    Envelope {
        header: Header {
            id: derived_id(&cause.header.id, suffix),
            event_type: E::TYPE.to_owned(),
            version: E::VERSION,
            occurred_at: cause.header.occurred_at,
            correlation_id: None,
            causation_id: None,
            producer: producer.to_owned(),
        },
        payload: event,
    }
    .caused_by(cause)
}

/// `<cause id>:<suffix>`, or, when that is longer than an envelope id may be, the cause id's
/// SHA-256 (hex) in its place.
pub fn derived_id(cause_id: &str, suffix: &str) -> String {
    let id = format!("{cause_id}:{suffix}");
    if id.chars().count() <= MAX_ID_CHARS {
        return id;
    }
    format!(
        "{}:{suffix}",
        hex::encode(Sha256::digest(cause_id.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn placed(email: Option<&str>) -> Envelope<OrderEvent> {
        let mut payload = json!({
            "order_id": "o-1", "customer_id": "c-1", "currency": "EUR", "total_cents": 1250,
            "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 625}],
        });
        if let Some(email) = email {
            payload["customer_email"] = json!(email);
        }
        let placed: fleet_schemas::OrderPlaced = serde_json::from_value(payload).unwrap();
        let mut env = Envelope::new(placed, "checkout").map(OrderEvent::from);
        env.header.id = "evt-1".into();
        env.header.occurred_at = Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap();
        env
    }

    fn order_of(cause: &Envelope<OrderEvent>) -> Order {
        match &cause.payload {
            OrderEvent::Placed(p) => Order::new(p.clone(), cause.header.occurred_at),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_placed_order_with_an_address_asks_for_a_confirmation() {
        let cause = placed(Some("ada@example.com"));
        let out = caused_by(&cause, &order_of(&cause));
        let ids: Vec<&str> = out.iter().map(|e| e.header.id.as_str()).collect();
        assert_eq!(ids, ["evt-1:email", "evt-1:analytics"]);
        for e in &out {
            assert_eq!(e.header.causation_id.as_deref(), Some("evt-1"));
            assert_eq!(e.header.correlation_id.as_deref(), Some("evt-1"));
            assert_eq!(e.header.producer, PRODUCER);
            assert_eq!(e.header.occurred_at, cause.header.occurred_at);
            e.header.check().unwrap();
            e.payload.validate().unwrap();
        }
        let body = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(body["type"], "email.requested");
        assert_eq!(body["payload"]["to"], "ada@example.com");
        assert_eq!(body["payload"]["content"]["template"], "order_confirmation");
        assert_eq!(body["payload"]["content"]["data"]["total_cents"], 1250);
        let analytics = serde_json::to_value(&out[1]).unwrap();
        assert_eq!(analytics["payload"]["name"], "order_placed");
        assert_eq!(analytics["payload"]["subject"], "c-1");
        assert_eq!(analytics["payload"]["timestamp"], "2026-11-26T15:00:00Z");
        assert_eq!(analytics["payload"]["properties"]["order_id"], "o-1");
        // What a consumer decodes is what was built.
        let decoded = fleet_schemas::decode(&serde_json::to_string(&out[1]).unwrap()).unwrap();
        assert_eq!(decoded, out[1]);
    }

    #[test]
    fn without_an_address_only_analytics_goes_out() {
        let cause = placed(None);
        let out = caused_by(&cause, &order_of(&cause));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header.event_type, "analytics.tracked");
    }

    #[test]
    fn the_correlation_of_the_cause_is_kept() {
        let cause = placed(None).with_correlation_id("checkout-9");
        let out = caused_by(&cause, &order_of(&cause));
        assert_eq!(out[0].header.correlation_id.as_deref(), Some("checkout-9"));
    }

    #[test]
    fn a_sent_email_gets_an_id_derived_from_its_request() {
        use fleet_schemas::{EmailSent, MailerKind};
        let cause = placed(Some("ada@example.com"));
        let mut request = caused_by(&cause, &order_of(&cause)).remove(0);
        request.header.correlation_id = None;
        let request =
            fleet_schemas::decode_as::<EmailRequested>(&serde_json::to_string(&request).unwrap())
                .unwrap();
        let sent = |provider_id: &str| {
            let sent = EmailSent::fulfilling(&request, MailerKind::Memory, provider_id).unwrap();
            derived_envelope(&request, "email", EMAIL_SENT_SUFFIX, sent)
        };
        let first = sent("m-1");
        assert_eq!(first.header.id, "evt-1:email:sent");
        assert_eq!(first.header.event_type, "email.sent");
        assert_eq!(first.header.version, 1);
        assert_eq!(first.header.causation_id.as_deref(), Some("evt-1:email"));
        assert_eq!(first.header.correlation_id.as_deref(), Some("evt-1:email"));
        assert_eq!(first.header.occurred_at, request.header.occurred_at);
        assert_eq!(first.header.producer, "email");
        assert_eq!(first.payload.request_id.as_str(), "evt-1:email");
        assert_eq!(
            first.payload.template.as_deref(),
            Some(CONFIRMATION_TEMPLATE)
        );
        first.check().unwrap();
        assert_eq!(
            sent("m-1"),
            first,
            "the same request gives the same message"
        );
        assert_eq!(sent("m-2").header.id, first.header.id, "and the same id");
        let body = serde_json::to_string(&first).unwrap();
        assert!(!body.contains("ada@example.com"), "{body}");
        let decoded = fleet_schemas::decode_as::<EmailSent>(&body).unwrap();
        assert_eq!(decoded, first);
    }

    #[test]
    fn ids_too_long_for_an_envelope_are_hashed() {
        assert_eq!(derived_id("abc", "email"), "abc:email");
        let long = "x".repeat(MAX_ID_CHARS);
        let id = derived_id(&long, "analytics");
        assert_eq!(id.len(), 64 + ":analytics".len());
        assert_eq!(id, derived_id(&long, "analytics"), "deterministic");
        assert_ne!(id, derived_id(&"y".repeat(MAX_ID_CHARS), "analytics"));
        let fits = "z".repeat(MAX_ID_CHARS - ":email".len());
        assert_eq!(derived_id(&fits, "email"), format!("{fits}:email"));
    }
}
