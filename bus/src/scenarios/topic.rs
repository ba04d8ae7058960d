//! Scenarios of topics: fan-out, filter policies, raw and enveloped delivery.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::{TestBus, own_attributes, receive, receive_n};
use crate::message::{AttributeValue, OutgoingMessage};
use crate::sns::{FilterScope, SnsEnvelope};
use crate::topology::{QueueDecl, SubscriptionDecl, TopicDecl};
use crate::transport::QueueHandle;

async fn raw_subscribers(
    bus: &TestBus,
    topic: &str,
    filters: Vec<(&str, serde_json::Value, FilterScope)>,
) -> (TopicDecl, Vec<(String, QueueHandle)>) {
    let mut decl = TopicDecl::new(bus.unique(topic));
    let mut queues = Vec::new();
    for (label, policy, scope) in filters {
        let q = bus.queue(QueueDecl::new(label)).await;
        decl = decl.subscribe(SubscriptionDecl::new(q.name()).raw().filter(policy, scope));
        queues.push((label.to_owned(), q));
    }
    (decl, queues)
}

/// The bodies each labelled queue received.
async fn delivered(
    queues: &[(String, QueueHandle)],
    expected_total: usize,
) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    let mut total = 0;
    for (label, q) in queues {
        let got = receive_n(q, 10, Duration::from_millis(1500)).await;
        total += got.len();
        out.push((label.clone(), got.into_iter().map(|m| m.body).collect()));
    }
    assert!(
        total <= expected_total,
        "more deliveries than expected: {out:?}"
    );
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub async fn topic_fans_out_to_every_subscribed_queue(bus: &TestBus) {
    let mut decl = TopicDecl::new(bus.unique("fanout"));
    let mut queues = Vec::new();
    for i in 0..3 {
        let q = bus.queue(QueueDecl::new(format!("fan{i}"))).await;
        decl = decl.subscribe(SubscriptionDecl::new(q.name()).raw());
        queues.push(q);
    }
    let topic = bus.topic(&decl).await;
    let receipt = topic
        .publish(OutgoingMessage::new("to everyone"))
        .await
        .unwrap();
    assert!(!receipt.message_id.is_empty());
    for q in &queues {
        let got = receive_n(q, 1, Duration::from_secs(5)).await;
        assert_eq!(
            got.len(),
            1,
            "[{}] {} got nothing",
            bus.features.name,
            q.name()
        );
        assert_eq!(got[0].body, "to everyone");
    }
}

fn attr_message(body: &str, attrs: &[(&str, AttributeValue)]) -> OutgoingMessage {
    attrs.iter().fold(OutgoingMessage::new(body), |m, (k, v)| {
        m.attribute(*k, v.clone())
    })
}

pub async fn attribute_filter_policies(bus: &TestBus) {
    let scope = FilterScope::MessageAttributes;
    let mut filters = vec![
        ("exact", json!({"type": ["order.placed"]}), scope),
        ("prefix", json!({"type": [{"prefix": "order."}]}), scope),
        ("suffix", json!({"type": [{"suffix": ".paid"}]}), scope),
        (
            "anything-but",
            json!({"type": [{"anything-but": ["order.placed", "order.paid"]}]}),
            scope,
        ),
        (
            "numeric",
            json!({"amount": [{"numeric": [">", 100, "<=", 500]}]}),
            scope,
        ),
        ("exists", json!({"vip": [{"exists": true}]}), scope),
        (
            "absent",
            json!({"vip": [{"exists": false}], "type": [{"prefix": "order."}]}),
            scope,
        ),
        ("array", json!({"tags": ["red"]}), scope),
    ];
    if bus.features.or_filter {
        filters.push((
            "or",
            json!({"$or": [{"type": ["user.created"]}, {"amount": [{"numeric": ["=", 42]}]}]}),
            scope,
        ));
    }
    if bus.features.equals_ignore_case {
        filters.push((
            "ignore-case",
            json!({"type": [{"equals-ignore-case": "ORDER.PLACED"}]}),
            scope,
        ));
    }
    let (decl, queues) = raw_subscribers(bus, "attr-filter", filters).await;
    let topic = bus.topic(&decl).await;
    let s = AttributeValue::string;
    let messages = [
        attr_message(
            "placed",
            &[
                ("type", s("order.placed")),
                ("amount", AttributeValue::number(250)),
            ],
        ),
        attr_message(
            "paid",
            &[
                ("type", s("order.paid")),
                ("amount", AttributeValue::number(42)),
                ("vip", s("yes")),
            ],
        ),
        attr_message(
            "user",
            &[
                ("type", s("user.created")),
                ("tags", AttributeValue::string_array("[\"red\",\"blue\"]")),
            ],
        ),
        attr_message("bare", &[]),
    ];
    for m in &messages {
        topic.publish(m.clone()).await.unwrap();
    }
    let mut expected = vec![
        ("exact", set(&["placed"])),
        ("prefix", set(&["placed", "paid"])),
        ("suffix", set(&["paid"])),
        ("anything-but", set(&["user"])),
        ("numeric", set(&["placed"])),
        ("exists", set(&["paid"])),
        ("absent", set(&["placed"])),
        ("array", set(&["user"])),
    ];
    if bus.features.or_filter {
        expected.push(("or", set(&["paid", "user"])));
    }
    if bus.features.equals_ignore_case {
        expected.push(("ignore-case", set(&["placed"])));
    }
    let total = expected.iter().map(|(_, s)| s.len()).sum();
    let got = delivered(&queues, total).await;
    for ((label, want), (_, have)) in expected.iter().zip(&got) {
        assert_eq!(have, want, "[{}] filter {label}", bus.features.name);
    }
}

pub async fn body_filter_policies(bus: &TestBus) {
    let scope = FilterScope::MessageBody;
    let mut filters = vec![
        ("exact", json!({"type": ["order.placed"]}), scope),
        ("nested", json!({"order": {"country": ["NL", "BE"]}}), scope),
        (
            "numeric",
            json!({"order": {"total": [{"numeric": [">=", 100]}]}}),
            scope,
        ),
        ("prefix", json!({"customer": [{"prefix": "vip-"}]}), scope),
        (
            "anything-but",
            json!({"type": [{"anything-but": "order.placed"}]}),
            scope,
        ),
        (
            "exists",
            json!({"order": {"coupon": [{"exists": true}]}}),
            scope,
        ),
    ];
    if bus.features.or_filter_in_body {
        let or = json!({"$or": [{"type": ["order.paid"]}, {"customer": [{"prefix": "vip-"}]}]});
        filters.push(("or", or, scope));
    }
    let (decl, queues) = raw_subscribers(bus, "body-filter", filters).await;
    let topic = bus.topic(&decl).await;
    let bodies = [
        json!({"type": "order.placed", "customer": "vip-7", "order": {"country": "NL", "total": 250}}),
        json!({"type": "order.paid", "customer": "c-1", "order": {"country": "DE", "total": 20, "coupon": "X"}}),
        json!({"type": "order.placed", "order": {"country": "BE", "total": 99.5}}),
    ];
    for b in &bodies {
        topic
            .publish(OutgoingMessage::new(b.to_string()))
            .await
            .unwrap();
    }
    topic
        .publish(OutgoingMessage::new("not json at all"))
        .await
        .unwrap();
    let b = |i: usize| bodies[i].to_string();
    let mut expected = vec![
        ("exact", [b(0), b(2)].into_iter().collect::<BTreeSet<_>>()),
        ("nested", [b(0), b(2)].into_iter().collect()),
        ("numeric", [b(0)].into_iter().collect()),
        ("prefix", [b(0)].into_iter().collect()),
        ("anything-but", [b(1)].into_iter().collect()),
        ("exists", [b(1)].into_iter().collect()),
    ];
    if bus.features.or_filter_in_body {
        expected.push(("or", [b(0), b(1)].into_iter().collect()));
    }
    let total = expected.iter().map(|(_, s)| s.len()).sum();
    let got = delivered(&queues, total).await;
    for ((label, want), (_, have)) in expected.iter().zip(&got) {
        assert_eq!(have, want, "[{}] body filter {label}", bus.features.name);
    }
}

pub async fn raw_delivery_versus_envelope(bus: &TestBus) {
    let raw_q = bus.queue(QueueDecl::new("raw")).await;
    let env_q = bus.queue(QueueDecl::new("enveloped")).await;
    let decl = TopicDecl::new(bus.unique("delivery"))
        .subscribe(SubscriptionDecl::new(raw_q.name()).raw())
        .subscribe(SubscriptionDecl::new(env_q.name()));
    let topic = bus.topic(&decl).await;
    let sent = OutgoingMessage::new("{\"order\":1}")
        .attribute("type", AttributeValue::string("order.placed"))
        .attribute("amount", AttributeValue::number(10))
        .subject("greetings");
    let receipt = topic.publish(sent.clone()).await.unwrap();

    let raw = receive_n(&raw_q, 1, Duration::from_secs(5)).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].body, sent.body, "raw delivery keeps the body");
    assert_eq!(
        own_attributes(&raw[0].attributes),
        sent.attributes,
        "raw delivery maps attributes to SQS attributes"
    );
    assert_eq!(SnsEnvelope::detect(&raw[0].body).unwrap(), None);

    let env = receive_n(&env_q, 1, Duration::from_secs(5)).await;
    assert_eq!(env.len(), 1);
    assert!(
        env[0].attributes.is_empty(),
        "enveloped delivery carries attributes in the envelope"
    );
    let parsed = SnsEnvelope::detect(&env[0].body)
        .unwrap()
        .expect("an SNS envelope");
    assert_eq!(parsed.message, sent.body);
    assert_eq!(parsed.message_id, receipt.message_id);
    assert_eq!(own_attributes(&parsed.attributes), sent.attributes);
    assert_eq!(parsed.subject.as_deref(), Some("greetings"));
    assert!(parsed.topic_arn.ends_with(&decl.name));
}

pub async fn fifo_topic_keeps_group_order(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("from-topic.fifo")).await;
    let decl =
        TopicDecl::new(bus.unique("orders.fifo")).subscribe(SubscriptionDecl::new(q.name()).raw());
    let topic = bus.topic(&decl).await;
    let batch: Vec<_> = (1..=5)
        .map(|i| {
            OutgoingMessage::new(format!("o{i}"))
                .group("customer-1")
                .deduplication_id(format!("o{i}"))
        })
        .collect();
    let r = topic.publish_batch(&batch).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    // A duplicate publish is dropped by the topic's deduplication.
    topic.publish(batch[0].clone()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        let b = receive(&q, 10, Duration::from_secs(1)).await;
        super::ack(&q, &b).await;
        got.extend(b);
        if got.len() >= 5 {
            break;
        }
    }
    let extra = receive(&q, 10, Duration::from_secs(1)).await;
    got.extend(extra);
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["o1", "o2", "o3", "o4", "o5"],
        "[{}]",
        bus.features.name
    );
    assert!(
        got.iter()
            .all(|m| m.system.message_group_id.as_deref() == Some("customer-1"))
    );
}

pub async fn publish_batch_partial_results(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("publish-batch")).await;
    let decl = TopicDecl::new(bus.unique("batch")).subscribe(SubscriptionDecl::new(q.name()).raw());
    let topic = bus.topic(&decl).await;
    let eleven = vec![OutgoingMessage::new("x"); 11];
    let err = topic.publish_batch(&eleven).await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyEntriesInBatchRequest"), "{err}");
    let big = "x".repeat(crate::limits::MAX_SNS_MESSAGE_BYTES / 2 + 1);
    let err = topic
        .publish_batch(&[OutgoingMessage::new(big.clone()), OutgoingMessage::new(big)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("BatchRequestTooLong"), "{err}");
    let batch = vec![
        OutgoingMessage::new("fine"),
        OutgoingMessage::new("dedup on a standard topic").deduplication_id("d"),
        OutgoingMessage::new("also fine"),
    ];
    let r = topic.publish_batch(&batch).await.unwrap();
    assert!(r[0].is_ok() && r[2].is_ok(), "{r:?}");
    assert!(
        r[1].is_err(),
        "[{}] accepted a non-numeric Number attribute",
        bus.features.name
    );
    let got = receive_n(&q, 2, Duration::from_secs(5)).await;
    let bodies: BTreeSet<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["also fine", "fine"].into_iter().collect());
}
