//! Queues (with their redrive), dead-letter queues, topics, subscriptions and the resource
//! policies of queues and topics, from the topology. The policies' statements are the ones
//! `fleet provision` applies (`fleet_bus::topology::policy`), so the two never fight over them.

use fleet_bus::sns::FilterScope;
use fleet_bus::topology::policy::{
    policy_document, queue_tls_only_statement, topic_send_statement, topic_tls_only_statement,
};
use fleet_bus::{QueueDecl, SubscriptionDecl, TopicDecl, Topology};
use serde_json::{Map, Value, json};

use super::encryption;
use crate::deploy::{Template, logical_id};

/// SNS encrypts its topics with its AWS-managed key: SNS holds the key it uses, so publishers
/// need no KMS grant and delivery to the queues is unaffected.
const TOPIC_KEY: &str = "alias/aws/sns";

/// Adds every queue (implicit dead-letter queues included), topic, subscription, queue policy
/// and topic policy of `topology`.
pub fn add(t: &mut Template, topology: &Topology) {
    let full = topology.with_implicit_dead_letter_queues();
    for queue in &full.queues {
        t.resource(logical_id("Queue", &queue.name), queue_resource(queue));
        t.resource(
            logical_id("QueuePolicy", &queue.name),
            queue_policy(queue, &full),
        );
    }
    for topic in &full.topics {
        t.resource(logical_id("Topic", &topic.name), topic_resource(topic));
        t.resource(
            logical_id("TopicPolicy", &topic.name),
            topic_policy(&topic.name),
        );
        for sub in &topic.subscriptions {
            t.resource(
                subscription_id(&topic.name, &sub.queue),
                subscription(&topic.name, sub),
            );
        }
    }
}

/// `Subscription<Topic><Queue>`.
pub fn subscription_id(topic: &str, queue: &str) -> String {
    logical_id(
        "Subscription",
        &format!("{}-{}", topic.replace('.', "-"), queue),
    )
}

fn queue_arn(name: &str) -> Value {
    json!({ "Fn::GetAtt": [logical_id("Queue", name), "Arn"] })
}

fn topic_ref(name: &str) -> Value {
    json!({ "Ref": logical_id("Topic", name) })
}

fn queue_resource(queue: &QueueDecl) -> Value {
    let mut p = Map::new();
    p.insert("QueueName".into(), json!(queue.name));
    p.insert(
        "VisibilityTimeout".into(),
        json!(queue.visibility_timeout_seconds),
    );
    p.insert(
        "MessageRetentionPeriod".into(),
        json!(queue.retention_seconds),
    );
    p.insert("DelaySeconds".into(), json!(queue.delay_seconds));
    if queue.is_fifo() {
        p.insert("FifoQueue".into(), json!(true));
        p.insert(
            "ContentBasedDeduplication".into(),
            json!(queue.content_based_deduplication),
        );
    }
    if let Some(dl) = &queue.dead_letter {
        p.insert(
            "RedrivePolicy".into(),
            json!({
                "deadLetterTargetArn": queue_arn(&dl.queue),
                "maxReceiveCount": dl.max_receive_count,
            }),
        );
    }
    for (name, value) in encryption::queue_properties(queue) {
        p.insert(name.into(), value);
    }
    json!({ "Type": "AWS::SQS::Queue", "Properties": p })
}

/// Every queue gets a policy (a dead-letter queue too): TLS only, and a send permission for each
/// topic that delivers to it.
fn queue_policy(queue: &QueueDecl, topology: &Topology) -> Value {
    let mut statements = Vec::new();
    for topic in &topology.topics {
        if topic.subscriptions.iter().any(|s| s.queue == queue.name) {
            statements.push(topic_send_statement(
                queue_arn(&queue.name),
                topic_ref(&topic.name),
                &topic.name,
            ));
        }
    }
    statements.push(queue_tls_only_statement(queue_arn(&queue.name)));
    json!({
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{ "Ref": logical_id("Queue", &queue.name) }],
            "PolicyDocument": policy_document(statements),
        },
    })
}

fn topic_resource(topic: &TopicDecl) -> Value {
    let mut p = Map::new();
    p.insert("TopicName".into(), json!(topic.name));
    p.insert("KmsMasterKeyId".into(), json!(TOPIC_KEY));
    if topic.is_fifo() {
        p.insert("FifoTopic".into(), json!(true));
        p.insert(
            "ContentBasedDeduplication".into(),
            json!(topic.content_based_deduplication),
        );
    }
    json!({ "Type": "AWS::SNS::Topic", "Properties": p })
}

fn topic_policy(topic: &str) -> Value {
    json!({
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {
            "Topics": [topic_ref(topic)],
            "PolicyDocument": policy_document(vec![topic_tls_only_statement(topic_ref(topic))]),
        },
    })
}

fn subscription(topic: &str, sub: &SubscriptionDecl) -> Value {
    let mut p = Map::new();
    p.insert("TopicArn".into(), topic_ref(topic));
    p.insert("Protocol".into(), json!("sqs"));
    p.insert("Endpoint".into(), queue_arn(&sub.queue));
    p.insert("RawMessageDelivery".into(), json!(sub.raw_delivery));
    if let Some(policy) = &sub.filter_policy {
        p.insert("FilterPolicy".into(), policy.clone());
        let scope = match sub.filter_scope {
            FilterScope::MessageAttributes => "MessageAttributes",
            FilterScope::MessageBody => "MessageBody",
        };
        p.insert("FilterPolicyScope".into(), json!(scope));
    }
    json!({
        "Type": "AWS::SNS::Subscription",
        // SNS delivers as soon as the subscription exists: the queue must already let it send.
        "DependsOn": logical_id("QueuePolicy", &sub.queue),
        "Properties": p,
    })
}
