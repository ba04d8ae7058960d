//! Every event type decodes from its fixtures: the current version, the previous version (which
//! must decode to the same event, as its upgrade says), and SNS notifications wrapping them, in
//! AWS's compact form and in moto's pretty-printed one. Decode, re-encode, decode is identical.

#![allow(clippy::unwrap_used)]

mod common;

use fleet_bus::sns::SnsEnvelope;
use fleet_schemas::{
    Envelope, Event, FleetEvent, OrderPlaced, Registry, decode, decode_as, event_types,
    json_schemas,
};

fn read(name: &str) -> String {
    common::fixture(name)
}

fn decoded(name: &str) -> Envelope<FleetEvent> {
    decode(&read(name)).unwrap_or_else(|e| panic!("{name}: {}", e.report()))
}

/// The current version of the type a fixture's name starts with (`email.sent.direct.v1.json`:
/// `email.sent`'s).
fn current_version(name: &str) -> u32 {
    event_types()
        .into_iter()
        .find(|(t, _)| name.starts_with(&format!("{t}.")))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{name} names no Fleet type"))
}

/// The fixture a variant must decode like: the previous version's `x.v1.json` -> `x.v2.json`,
/// `x.v2.sns.json` -> `x.v2.json`, `x.v1.sns-moto.json` -> `x.v2.json`.
fn counterpart(name: &str) -> Option<String> {
    let base = match name.find(".sns") {
        Some(at) => format!("{}.json", &name[..at]),
        None => name.to_owned(),
    };
    let v = current_version(name);
    let current = base.replace(&format!(".v{}.json", v - 1), &format!(".v{v}.json"));
    (current != name).then_some(current)
}

#[test]
fn every_type_has_current_previous_and_sns_fixtures() {
    let names = common::fixture_names();
    for (t, v) in event_types() {
        let mut wanted = vec![format!("{t}.v{v}.json")];
        if v > 1 {
            wanted.push(format!("{t}.v{}.json", v - 1));
        }
        for wanted in wanted {
            assert!(names.contains(&wanted), "missing fixture {wanted}");
        }
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("{t}.v{v}.sns"))),
            "{t} needs an SNS-enveloped fixture"
        );
    }
    assert!(names.iter().any(|n| n.contains(".sns-moto.")));
}

#[test]
fn every_fixture_decodes_to_its_type_at_the_current_version() {
    for name in common::fixture_names() {
        let env = decoded(&name);
        assert!(name.starts_with(env.header.event_type.as_str()), "{name}");
        assert_eq!(env.payload.event_type(), env.header.event_type, "{name}");
        assert_eq!(
            env.header.version,
            current_version(&name),
            "{name}: upgraded to the current version"
        );
        assert!(env.payload.validate().is_ok(), "{name}");
    }
}

#[test]
fn previous_versions_and_sns_deliveries_decode_like_their_current_fixture() {
    let mut compared = 0;
    for name in common::fixture_names() {
        if let Some(current) = counterpart(&name) {
            assert_eq!(decoded(&name), decoded(&current), "{name} vs {current}");
            compared += 1;
        }
    }
    assert!(compared >= 18, "only {compared} comparisons");
}

#[test]
fn decode_encode_decode_is_identical() {
    for name in common::fixture_names() {
        let first = decoded(&name);
        let text = serde_json::to_string(&first).unwrap();
        let second = decode(&text).unwrap_or_else(|e| panic!("{name}: {}: {text}", e.report()));
        assert_eq!(first, second, "{name}");
        let pretty = serde_json::to_string_pretty(&second).unwrap();
        assert_eq!(decode(&pretty).unwrap(), first, "{name}");
    }
}

#[test]
fn sns_fixtures_carry_the_attributes_fleet_sets() {
    // A previous-version delivery says the previous version; the decoded envelope is upgraded
    // to the current one.
    for name in common::fixture_names()
        .iter()
        .filter(|n| n.contains(&format!(".v{}.sns", current_version(n))))
    {
        let sns = SnsEnvelope::detect(&read(name)).unwrap().unwrap();
        assert_eq!(sns.attributes, decoded(name).attributes(), "{name}");
    }
}

#[test]
fn upgrades_produce_the_documented_values() {
    let Envelope { payload, header } =
        decode_as::<OrderPlaced>(&read("order.placed.v1.json")).unwrap();
    assert_eq!(payload.total_cents, 5343);
    assert_eq!(payload.items[1].unit_price_cents, 850);
    assert_eq!(header.correlation_id.as_deref(), Some("checkout-7f3a"));
    assert_eq!(header.causation_id, None);
    let err = decode_as::<OrderPlaced>(&read("order.paid.v2.json")).unwrap_err();
    assert_eq!(err.label(), "unknown_type");
}

#[test]
fn a_registry_can_decode_a_single_type() {
    let registry = Registry::new().with::<OrderPlaced>(|e| e);
    let env = registry.decode(&read("order.placed.v2.sns.json")).unwrap();
    assert_eq!(env.payload.currency.as_str(), "EUR");
    let err = registry
        .decode(&read("email.requested.v2.json"))
        .unwrap_err();
    assert_eq!(err.label(), "unknown_type");
    assert!(err.to_string().contains("known: order.placed"), "{err}");
}

#[test]
fn new_envelopes_decode_back() {
    let placed = decode_as::<OrderPlaced>(&read("order.placed.v2.json")).unwrap();
    let next = Envelope::new(placed.payload.clone(), "checkout").caused_by(&placed);
    assert!(next.check().is_ok());
    assert_eq!(next.header.version, OrderPlaced::VERSION);
    assert_eq!(
        next.header.causation_id.as_deref(),
        Some(placed.header.id.as_str())
    );
    assert_eq!(next.header.correlation_id, placed.header.correlation_id);
    let again = decode(&serde_json::to_string(&next).unwrap()).unwrap();
    assert_eq!(again, next.clone().map(FleetEvent::from));
    assert_eq!(again.attributes(), next.attributes());
    let bad = Envelope::new(placed.payload, "").with_correlation_id("x".repeat(129));
    assert_eq!(bad.check().unwrap_err().field(), Some("correlation_id"));
}

#[test]
fn every_type_has_a_schema_file_name() {
    let names: Vec<String> = json_schemas().into_iter().map(|(n, _)| n).collect();
    for (t, v) in event_types() {
        assert!(names.contains(&format!("{t}.v{v}.json")), "{t}");
    }
}
