//! Per-message CPU costs on the hot path: SNS envelope detection and filter policy matching.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fleet_bus::sns::{FilterPolicy, FilterScope, SnsEnvelope};
use fleet_bus::{AttributeValue, MessageAttributes};

fn codec(c: &mut Criterion) {
    let mut attrs = MessageAttributes::new();
    attrs.insert("type".into(), AttributeValue::string("order.placed"));
    attrs.insert("amount".into(), AttributeValue::number(250));
    let body =
        serde_json::json!({"type": "order.placed", "order": {"country": "NL", "total": 250}})
            .to_string();
    let envelope = SnsEnvelope::new(
        "m-1",
        "arn:aws:sns:us-east-1:1:events",
        body.clone(),
        attrs.clone(),
    )
    .to_json();

    c.bench_function("sns_detect_raw_body", |b| {
        b.iter(|| SnsEnvelope::detect(black_box(&body)))
    });
    c.bench_function("sns_detect_and_unwrap_envelope", |b| {
        b.iter(|| SnsEnvelope::detect(black_box(&envelope)))
    });

    let attr_policy = FilterPolicy::parse(
        r#"{"type": [{"prefix": "order."}], "amount": [{"numeric": [">", 100, "<=", 500]}]}"#,
        FilterScope::MessageAttributes,
    )
    .expect("policy");
    let body_policy = FilterPolicy::parse(
        r#"{"order": {"country": ["NL", "BE"], "total": [{"numeric": [">=", 100]}]}}"#,
        FilterScope::MessageBody,
    )
    .expect("policy");
    c.bench_function("filter_policy_attributes", |b| {
        b.iter(|| attr_policy.matches(black_box(&attrs), black_box(&body)))
    });
    c.bench_function("filter_policy_body", |b| {
        b.iter(|| body_policy.matches(black_box(&attrs), black_box(&body)))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
