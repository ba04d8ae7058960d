//! SNS fan-out end to end on moto: a message Fleet publishes reaches each subscribed queue whose
//! filter matches, and only those, and Fleet consumers consume it; messages sent by another SDK
//! (boto3), plain or through an enveloped SNS subscription, are consumed too.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::scenarios::unique_name;
use fleet_bus::sns::FilterScope;
use fleet_bus::{
    AttributeValue, Consumer, Declaration, OutgoingMessage, SubscriptionDecl, TopicDecl, Transport,
};
use fleet_tests::fleet::{Running, Shared, declare_with_dlq, eventually, lock, quick_config};
use fleet_tests::moto;
use serde_json::json;

/// What a consumer saw: body, `type` attribute, and whether it came in an SNS envelope.
type Seen = Shared<BTreeSet<(String, String, bool)>>;

fn consumer(t: &fleet_bus::aws::SqsTransport, queue: &str, seen: Seen) -> Running {
    let handler = handler_fn(move |d: Delivery| {
        let seen = seen.clone();
        async move {
            let p = d.payload().map_err(fleet_bus::HandlerError::permanent)?;
            let kind = p
                .attributes
                .get("type")
                .and_then(AttributeValue::as_str)
                .unwrap_or("")
                .to_owned();
            lock(&seen).insert((p.body, kind, p.envelope.is_some()));
            Ok(())
        }
    });
    Running::start(
        Consumer::new(t.clone(), queue)
            .handler(handler)
            .config(quick_config()),
    )
}

fn event(kind: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage::new(body).attribute("type", AttributeValue::string(kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_message_reaches_exactly_the_matching_queues_and_is_consumed() {
    let t = moto::transport().await;
    let (orders, emails, audit) = (
        unique_name("orders"),
        unique_name("emails"),
        unique_name("audit"),
    );
    for q in [&orders, &emails, &audit] {
        declare_with_dlq(&t, q, 3, Duration::from_secs(10)).await;
    }
    let topic = TopicDecl::new(unique_name("events"))
        .subscribe(SubscriptionDecl::new(&orders).raw().filter(
            json!({"type": [{"prefix": "order."}]}),
            FilterScope::MessageAttributes,
        ))
        .subscribe(SubscriptionDecl::new(&emails).raw().filter(
            json!({"type": ["email.requested"]}),
            FilterScope::MessageAttributes,
        ))
        .subscribe(SubscriptionDecl::new(&audit));
    t.declare(&Declaration::Topic(&topic)).await.unwrap();
    for s in &topic.subscriptions {
        t.declare(&Declaration::Subscription {
            topic: &topic.name,
            subscription: s,
        })
        .await
        .unwrap();
    }
    let publisher = t.topic(&topic.name).await.unwrap();
    let batch = vec![
        event("order.placed", "{\"order\":1}"),
        event("email.requested", "{\"to\":\"a@example.com\"}"),
        event("user.created", "{\"user\":7}"),
    ];
    assert!(
        publisher
            .publish_batch(&batch)
            .await
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );

    let seen: Vec<Seen> = (0..3).map(|_| Arc::default()).collect();
    let running: Vec<Running> = [&orders, &emails, &audit]
        .iter()
        .zip(&seen)
        .map(|(q, s)| consumer(&t, q, s.clone()))
        .collect();
    eventually(Duration::from_secs(30), || async {
        lock(&seen[2]).len() == 3 && lock(&seen[0]).len() == 1 && lock(&seen[1]).len() == 1
    })
    .await;
    // Give a stray delivery time to show up before checking "only those".
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in running {
        let report = r.stop().await;
        assert_eq!(report.received, report.settled(), "{report}");
    }
    let row = |body: &str, kind: &str, env: bool| (body.to_owned(), kind.to_owned(), env);
    assert_eq!(
        *lock(&seen[0]),
        BTreeSet::from([row("{\"order\":1}", "order.placed", false)])
    );
    assert_eq!(
        *lock(&seen[1]),
        BTreeSet::from([row("{\"to\":\"a@example.com\"}", "email.requested", false)])
    );
    assert_eq!(
        *lock(&seen[2]),
        BTreeSet::from([
            row("{\"order\":1}", "order.placed", true),
            row("{\"to\":\"a@example.com\"}", "email.requested", true),
            row("{\"user\":7}", "user.created", true)
        ]),
        "the unfiltered, enveloped subscription gets everything, unwrapped by the consumer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_another_sdk_are_consumed_plain_and_enveloped() {
    let t = moto::transport().await;
    let (plain, fanned) = (unique_name("boto-plain"), unique_name("boto-sns"));
    declare_with_dlq(&t, &plain, 3, Duration::from_secs(10)).await;
    declare_with_dlq(&t, &fanned, 3, Duration::from_secs(10)).await;
    let topic = TopicDecl::new(unique_name("boto-topic")).subscribe(SubscriptionDecl::new(&fanned));
    t.declare(&Declaration::Topic(&topic)).await.unwrap();
    t.declare(&Declaration::Subscription {
        topic: &topic.name,
        subscription: &topic.subscriptions[0],
    })
    .await
    .unwrap();
    let topic_arn = t.topic_arn(&topic.name).await.unwrap().unwrap();
    let queue_url = t.queue_url(&plain).await.unwrap().unwrap();

    let script = r#"
import sys, boto3
endpoint, queue_url, topic_arn = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
boto3.client("sqs", **kw).send_message(QueueUrl=queue_url, MessageBody='{"from":"boto3 sqs"}',
    MessageAttributes={"type": {"DataType": "String", "StringValue": "order.placed"}})
boto3.client("sns", **kw).publish(TopicArn=topic_arn, Message='{"from":"boto3 sns"}',
    MessageAttributes={"type": {"DataType": "String", "StringValue": "email.requested"}})
"#;
    let python = fleet_tests::moto::python();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&moto::moto().endpoint)
        .arg(&queue_url)
        .arg(&topic_arn)
        .output();
    let out = out.unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}): run ./scripts/test, which creates the venv",
            python.display()
        )
    });
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (a, b): (Seen, Seen) = (Arc::default(), Arc::default());
    let (ra, rb) = (
        consumer(&t, &plain, a.clone()),
        consumer(&t, &fanned, b.clone()),
    );
    eventually(Duration::from_secs(30), || async {
        lock(&a).len() == 1 && lock(&b).len() == 1
    })
    .await;
    ra.stop().await;
    rb.stop().await;
    assert_eq!(
        *lock(&a),
        BTreeSet::from([(
            "{\"from\":\"boto3 sqs\"}".to_owned(),
            "order.placed".to_owned(),
            false
        )])
    );
    assert_eq!(
        *lock(&b),
        BTreeSet::from([(
            "{\"from\":\"boto3 sns\"}".to_owned(),
            "email.requested".to_owned(),
            true
        )])
    );
}
