//! The core's tests: buckets at their edges, time zones in the input, what each type counts,
//! revenue, sums.

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn envelope(event_type: &str, occurred_at: &str, payload: Value) -> Envelope<FleetEvent> {
    envelope_from("test", event_type, occurred_at, payload)
}

fn envelope_from(
    producer: &str,
    event_type: &str,
    occurred_at: &str,
    payload: Value,
) -> Envelope<FleetEvent> {
    let body = json!({
        "id": format!("id-{event_type}-{occurred_at}"),
        "type": event_type,
        "version": 2,
        "occurred_at": occurred_at,
        "producer": producer,
        "payload": payload,
    });
    fleet_schemas::decode(&body.to_string()).unwrap()
}

/// A tracked event as the orders worker sends it (revenue counts only from it).
fn tracked(name: &str, subject: &str, timestamp: &str, properties: Value) -> Envelope<FleetEvent> {
    envelope_from(
        crate::orders::PRODUCER,
        "analytics.tracked",
        "2020-01-01T00:00:00Z",
        json!({"name": name, "subject": subject, "properties": properties, "timestamp": timestamp}),
    )
}

fn deltas(e: &Envelope<FleetEvent>) -> Vec<(String, i64)> {
    match count(e).unwrap() {
        Counted::Deltas(d) => {
            assert_eq!(d.event_id, e.header.id);
            d.deltas
        }
        skipped => panic!("expected deltas, got {skipped:?}"),
    }
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(k, d)| ((*k).to_owned(), *d)).collect()
}

#[test]
fn bucket_labels_and_starts() {
    let t = utc("2026-11-28T02:57:59.999Z");
    assert_eq!(Bucket::Minute.label(t), "2026-11-28T02:57");
    assert_eq!(Bucket::Hour.label(t), "2026-11-28T02");
    assert_eq!(Bucket::Day.label(t), "2026-11-28");
    assert_eq!(Bucket::Minute.start(t), utc("2026-11-28T02:57:00Z"));
    assert_eq!(Bucket::Hour.start(t), utc("2026-11-28T02:00:00Z"));
    assert_eq!(Bucket::Day.start(t), utc("2026-11-28T00:00:00Z"));
    let names: Vec<_> = Bucket::ALL.iter().map(|b| b.as_str()).collect();
    assert_eq!(names, ["minute", "hour", "day"]);
    assert_eq!(Bucket::Day.length(), TimeDelta::hours(24));
}

#[test]
fn a_tracked_event_counts_its_name_in_three_buckets_and_its_subject_per_day() {
    let e = tracked(
        "checkout_started",
        "c-42",
        "2026-11-28T02:57:13Z",
        json!({}),
    );
    assert_eq!(
        deltas(&e),
        pairs(&[
            ("event#checkout_started#day#2026-11-28", 1),
            ("event#checkout_started#hour#2026-11-28T02", 1),
            ("event#checkout_started#minute#2026-11-28T02:57", 1),
            ("subject#c-42#day#2026-11-28", 1),
        ])
    );
}

#[test]
fn the_last_and_first_instants_of_a_utc_day_fall_on_either_side_of_midnight() {
    let before = tracked("a", "s", "2026-11-27T23:59:59.999999Z", json!({}));
    let after = tracked("a", "s", "2026-11-28T00:00:00Z", json!({}));
    let d = deltas(&before);
    assert!(d.contains(&("event#a#minute#2026-11-27T23:59".into(), 1)));
    assert!(d.contains(&("event#a#hour#2026-11-27T23".into(), 1)));
    assert!(d.contains(&("event#a#day#2026-11-27".into(), 1)));
    assert!(d.contains(&("subject#s#day#2026-11-27".into(), 1)));
    let d = deltas(&after);
    assert!(d.contains(&("event#a#minute#2026-11-28T00:00".into(), 1)));
    assert!(d.contains(&("event#a#hour#2026-11-28T00".into(), 1)));
    assert!(d.contains(&("event#a#day#2026-11-28".into(), 1)));
    assert!(d.contains(&("subject#s#day#2026-11-28".into(), 1)));
}

#[test]
fn times_with_an_offset_are_bucketed_in_utc() {
    // 00:30 in Paris (+01:00) is 23:30 UTC the day before; 22:15 in New York (-05:00) is 03:15
    // UTC the day after; a leap day and a new year's eve cross the month and the year.
    for (local, minute, day) in [
        (
            "2026-11-28T00:30:00+01:00",
            "2026-11-27T23:30",
            "2026-11-27",
        ),
        (
            "2026-11-27T22:15:00-05:00",
            "2026-11-28T03:15",
            "2026-11-28",
        ),
        (
            "2028-02-29T23:59:00-00:30",
            "2028-03-01T00:29",
            "2028-03-01",
        ),
        (
            "2026-12-31T23:00:00-02:00",
            "2027-01-01T01:00",
            "2027-01-01",
        ),
        (
            "2026-11-28T05:45:30+05:45",
            "2026-11-28T00:00",
            "2026-11-28",
        ),
    ] {
        let d = deltas(&tracked("n", "s", local, json!({})));
        assert!(
            d.contains(&(format!("event#n#minute#{minute}"), 1)),
            "{local}: {d:?}"
        );
        assert!(
            d.contains(&(format!("event#n#day#{day}"), 1)),
            "{local}: {d:?}"
        );
        assert!(
            d.contains(&(format!("subject#s#day#{day}"), 1)),
            "{local}: {d:?}"
        );
    }
}

#[test]
fn a_tracked_event_is_bucketed_by_its_own_timestamp_not_the_envelope_time() {
    // The envelope says 2020; the payload's timestamp decides.
    let d = deltas(&tracked("n", "s", "2026-11-28T10:00:00Z", json!({})));
    assert!(d.iter().all(|(k, _)| k.contains("2026-11-28")), "{d:?}");
}

/// A valid order event of `event_type` from the schemas crate's fixtures, at `occurred_at`.
fn order_event(event_type: &str, occurred_at: &str) -> Envelope<FleetEvent> {
    let fixture = match event_type {
        "order.placed" => include_str!("../../../../schemas/tests/fixtures/order.placed.v2.json"),
        "order.paid" => include_str!("../../../../schemas/tests/fixtures/order.paid.v2.json"),
        "order.shipped" => include_str!("../../../../schemas/tests/fixtures/order.shipped.v2.json"),
        "order.cancelled" => {
            include_str!("../../../../schemas/tests/fixtures/order.cancelled.v2.json")
        }
        "order.refunded" => {
            include_str!("../../../../schemas/tests/fixtures/order.refunded.v2.json")
        }
        other => panic!("no fixture for {other}"),
    };
    let mut body: Value = serde_json::from_str(fixture).unwrap();
    body["occurred_at"] = json!(occurred_at);
    fleet_schemas::decode(&body.to_string()).unwrap()
}

#[test]
fn order_events_count_their_type_by_the_envelope_time_and_nothing_else() {
    for event_type in [
        "order.placed",
        "order.paid",
        "order.shipped",
        "order.cancelled",
        "order.refunded",
    ] {
        let e = order_event(event_type, "2026-11-28T23:59:59+02:00");
        assert_eq!(
            deltas(&e),
            pairs(&[
                (&format!("event#{event_type}#day#2026-11-28"), 1),
                (&format!("event#{event_type}#hour#2026-11-28T21"), 1),
                (&format!("event#{event_type}#minute#2026-11-28T21:59"), 1),
            ]),
            "{event_type}: no revenue from raw order events, no subject"
        );
    }
}

#[test]
fn email_requested_is_skipped_with_its_type_as_the_reason() {
    let e = envelope(
        "email.requested",
        "2026-11-28T00:00:00Z",
        json!({"to": "ada@example.com", "content": {"kind": "template",
               "template": "order_confirmation", "data": {}}}),
    );
    assert_eq!(
        count(&e).unwrap(),
        Counted::Skipped {
            event_type: "email.requested"
        }
    );
}

/// An `email.sent` (version 1) from the schemas crate's fixture, at `occurred_at`, with this
/// template (`None`: a written-out email) and mailer.
fn email_sent(occurred_at: &str, template: Option<&str>, mailer: &str) -> Envelope<FleetEvent> {
    let fixture = include_str!("../../../../schemas/tests/fixtures/email.sent.v1.json");
    let mut body: Value = serde_json::from_str(fixture).unwrap();
    body["occurred_at"] = json!(occurred_at);
    body["payload"]["mailer"] = json!(mailer);
    match template {
        Some(t) => body["payload"]["template"] = json!(t),
        None => {
            body["payload"].as_object_mut().unwrap().remove("template");
        }
    }
    fleet_schemas::decode(&body.to_string()).unwrap()
}

#[test]
fn email_sent_counts_its_type_and_its_template_by_the_envelope_time() {
    let e = email_sent(
        "2026-11-28T23:59:59+02:00",
        Some("order_confirmation"),
        "ses",
    );
    assert_eq!(
        deltas(&e),
        pairs(&[
            ("event#email.sent#day#2026-11-28", 1),
            ("event#email.sent#hour#2026-11-28T21", 1),
            ("event#email.sent#minute#2026-11-28T21:59", 1),
            (
                "event#email.sent#template=order_confirmation#day#2026-11-28",
                1
            ),
            (
                "event#email.sent#template=order_confirmation#hour#2026-11-28T21",
                1
            ),
            (
                "event#email.sent#template=order_confirmation#minute#2026-11-28T21:59",
                1
            ),
        ]),
        "no subject, no revenue"
    );
    assert_eq!(
        email_sent_template("order_confirmation"),
        "email.sent#template=order_confirmation"
    );
}

#[test]
fn a_written_out_email_counts_only_its_type() {
    let e = email_sent("2026-11-28T12:00:00Z", None, "smtp");
    assert_eq!(
        deltas(&e),
        pairs(&[
            ("event#email.sent#day#2026-11-28", 1),
            ("event#email.sent#hour#2026-11-28T12", 1),
            ("event#email.sent#minute#2026-11-28T12:00", 1),
        ])
    );
}

#[test]
fn the_mailer_does_not_change_what_an_email_counts() {
    let counted: Vec<_> = ["ses", "smtp", "memory"]
        .into_iter()
        .map(|mailer| deltas(&email_sent("2026-11-28T12:00:00Z", Some("welcome"), mailer)))
        .collect();
    assert!(counted.windows(2).all(|w| w[0] == w[1]), "{counted:?}");
    assert_eq!(counted[0].len(), 6);
}

#[test]
fn templates_keep_counters_apart_from_each_other_and_from_the_total() {
    let a = deltas(&email_sent("2026-11-28T12:00:00Z", Some("welcome"), "ses"));
    let b = deltas(&email_sent("2026-11-28T12:00:00Z", Some("reset"), "ses"));
    let shared: Vec<_> = a.iter().filter(|k| b.contains(k)).collect();
    assert_eq!(
        shared.len(),
        3,
        "only email.sent's own counters are shared: {shared:?}"
    );
    assert!(
        shared
            .iter()
            .all(|(k, _)| k.starts_with("event#email.sent#") && !k.contains("template=")),
        "{shared:?}"
    );
}

#[test]
fn order_paid_adds_revenue_and_order_refunded_subtracts_it() {
    let props = json!({"order_id": "o-1", "amount_cents": 5343, "currency": "EUR"});
    let paid = deltas(&tracked(
        ORDER_PAID,
        "c-1",
        "2026-11-28T12:00:00Z",
        props.clone(),
    ));
    assert!(
        paid.contains(&("revenue#EUR#day#2026-11-28".into(), 5343)),
        "{paid:?}"
    );
    assert!(paid.contains(&("event#order_paid#day#2026-11-28".into(), 1)));
    assert!(paid.contains(&("subject#c-1#day#2026-11-28".into(), 1)));
    assert_eq!(paid.len(), 5);
    let refunded = deltas(&tracked(
        ORDER_REFUNDED,
        "c-1",
        "2026-11-28T23:30:00-01:00",
        props,
    ));
    assert!(
        refunded.contains(&("revenue#EUR#day#2026-11-29".into(), -5343)),
        "{refunded:?}"
    );
    let other = deltas(&tracked(
        "checkout_started",
        "c-1",
        "2026-11-28T12:00:00Z",
        json!({"amount_cents": 100, "currency": "EUR"}),
    ));
    assert!(
        other.iter().all(|(k, _)| !k.starts_with("revenue#")),
        "{other:?}"
    );
}

#[test]
fn a_zero_amount_adds_no_revenue_counter() {
    let props = json!({"order_id": "o-1", "amount_cents": 0, "currency": "JPY"});
    let d = deltas(&tracked(ORDER_PAID, "c-1", "2026-11-28T12:00:00Z", props));
    assert_eq!(d.len(), 4, "{d:?}");
}

#[test]
fn order_analytics_without_a_countable_amount_or_currency_are_refused() {
    for (props, property, reason) in [
        (json!({"currency": "EUR"}), "amount_cents", "missing"),
        (
            json!({"amount_cents": -5, "currency": "EUR"}),
            "amount_cents",
            "-5 is not a whole",
        ),
        (
            json!({"amount_cents": 1.5, "currency": "EUR"}),
            "amount_cents",
            "1.5 is not",
        ),
        (
            json!({"amount_cents": "100", "currency": "EUR"}),
            "amount_cents",
            "not a whole",
        ),
        (
            json!({"amount_cents": u64::MAX, "currency": "EUR"}),
            "amount_cents",
            "not a whole",
        ),
        (json!({"amount_cents": 100}), "currency", "missing"),
        (
            json!({"amount_cents": 100, "currency": "eur"}),
            "currency",
            "not a currency code",
        ),
        (
            json!({"amount_cents": 100, "currency": 978}),
            "currency",
            "978 is not a string",
        ),
    ] {
        for name in [ORDER_PAID, ORDER_REFUNDED] {
            let e = tracked(name, "c-1", "2026-11-28T12:00:00Z", props.clone());
            let err = count(&e).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, AnalyticsError::InvalidProperty { property: p, .. } if *p == property),
                "{props}: {text}"
            );
            assert!(text.contains(reason), "{props}: {text}");
            assert!(
                text.starts_with(&format!(
                    "invalid `payload.properties.{property}` for {name}"
                )),
                "{text}"
            );
        }
    }
}

#[test]
fn names_and_subjects_with_separators_keep_distinct_keys() {
    let a = deltas(&tracked("a#day", "s", "2026-11-28T12:00:00Z", json!({})));
    let b = deltas(&tracked("a", "s", "2026-11-28T12:00:00Z", json!({})));
    for (key, _) in &a {
        assert!(
            !b.iter().any(|(k, _)| k == key) || key.starts_with("subject#"),
            "{key}"
        );
    }
}

#[test]
fn sums_are_per_distinct_counter_and_drop_zeros() {
    let t = Utc.with_ymd_and_hms(2026, 11, 28, 2, 57, 0).unwrap();
    let name = Series::Event("x".into());
    let revenue = Series::Revenue("EUR".into());
    let events = [
        EventDeltas::new(
            "1",
            [
                (name.key(Bucket::Minute, t), 1),
                (revenue.key(Bucket::Day, t), 500),
            ],
        ),
        EventDeltas::new(
            "2",
            [
                (name.key(Bucket::Minute, t), 1),
                (revenue.key(Bucket::Day, t), -500),
            ],
        ),
        EventDeltas::new("3", [(name.key(Bucket::Hour, t), 1)]),
    ];
    let totals = sum(&events);
    assert_eq!(
        totals.into_iter().collect::<Vec<_>>(),
        pairs(&[
            ("event#x#hour#2026-11-28T02", 1),
            ("event#x#minute#2026-11-28T02:57", 2)
        ]),
        "the revenue nets out to zero: no write for it"
    );
    assert!(sum(&[]).is_empty());
}

#[test]
fn an_events_own_deltas_are_summed_sorted_and_without_zeros() {
    let e = EventDeltas::new("1", pairs(&[("b", 1), ("a", 2), ("b", 3), ("c", 0)]));
    assert_eq!(e.deltas, pairs(&[("a", 2), ("b", 4)]));
}

#[test]
fn series_keys_and_their_buckets() {
    let t = utc("2026-11-28T02:57:00Z");
    assert_eq!(Series::Event("n".into()).buckets(), &Bucket::ALL);
    assert_eq!(Series::Subject("s".into()).buckets(), &[Bucket::Day]);
    assert_eq!(Series::Revenue("EUR".into()).buckets(), &[Bucket::Day]);
    assert_eq!(
        Series::Subject("s".into()).key(Bucket::Day, t),
        "subject#s#day#2026-11-28"
    );
    assert_eq!(
        Series::Revenue("EUR".into()).key(Bucket::Day, t),
        "revenue#EUR#day#2026-11-28"
    );
}

#[test]
fn revenue_counts_only_the_orders_workers_payments() {
    let props = json!({"order_id": "o-1", "amount_cents": 5343, "currency": "EUR"});
    let forged = envelope_from(
        "web",
        "analytics.tracked",
        "2026-11-28T12:00:00Z",
        json!({"name": ORDER_PAID, "subject": "c-1", "properties": props, "timestamp": "2026-11-28T12:00:00Z"}),
    );
    let d = deltas(&forged);
    assert!(d.iter().all(|(k, _)| !k.starts_with("revenue#")), "{d:?}");
    assert!(
        d.contains(&("event#order_paid#day#2026-11-28".into(), 1)),
        "{d:?}"
    );
}
