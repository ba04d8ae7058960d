//! Queue encryption at rest: SSE-SQS by default; with the `QueueEncryption` parameter at `kms`,
//! a customer-managed key (rotated yearly) that the queues use, whose key policy lets SNS encrypt
//! for the stack's own topics. SNS cannot use the AWS-managed `aws/sqs` key, so a queue on that
//! key silently receives nothing from a topic: the customer key is the only KMS option.

use fleet_bus::{QueueDecl, Topology};
use serde_json::{Value, json};

use crate::deploy::{Template, logical_id};

/// The template parameter choosing the queues' encryption.
pub const PARAMETER: &str = "QueueEncryption";
/// The condition true when the queues use the stack's customer key (the roles' `kms:` grants
/// depend on it too).
pub const CONDITION: &str = "UseKms";
/// The customer key's logical id.
pub const KEY: &str = "QueueKey";

/// Adds the parameter, the condition, the key, its alias and the key's ARN as an output.
pub fn add(t: &mut Template, topology: &Topology) {
    t.parameters.insert(
        PARAMETER.into(),
        json!({
            "Type": "String",
            "Default": "sqs-managed",
            "AllowedValues": ["sqs-managed", "kms"],
            "Description": "Queue encryption at rest: sqs-managed (SSE-SQS) or kms (a customer key, created by this stack, that SNS may use for the stack's topics)",
        }),
    );
    t.conditions.insert(
        CONDITION.into(),
        json!({ "Fn::Equals": [{ "Ref": PARAMETER }, "kms"] }),
    );
    t.resource(KEY, key(topology));
    t.resource(
        "QueueKeyAlias",
        json!({
            "Type": "AWS::KMS::Alias",
            "Condition": CONDITION,
            "Properties": {
                "AliasName": { "Fn::Sub": "alias/${AWS::StackName}-queues" },
                "TargetKeyId": { "Ref": KEY },
            },
        }),
    );
    t.outputs.insert(
        "QueueKeyArn".into(),
        json!({
            "Condition": CONDITION,
            "Description": "The queues' KMS key (give it to `fleet provision` as kms_key if it also applies this topology)",
            "Value": { "Fn::GetAtt": [KEY, "Arn"] },
        }),
    );
}

fn key(topology: &Topology) -> Value {
    let topics: Vec<Value> = topology
        .topics
        .iter()
        .map(|topic| json!({ "Ref": logical_id("Topic", &topic.name) }))
        .collect();
    let mut statements = vec![json!({
        // The key policy must let the account administer the key, or nobody can (AWS's
        // default key policy).
        "Sid": "AccountAdministersTheKey",
        "Effect": "Allow",
        "Principal": { "AWS": { "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root" } },
        "Action": "kms:*",
        "Resource": "*",
    })];
    if !topics.is_empty() {
        statements.push(json!({
            "Sid": "TheStackTopicsDeliverToTheQueues",
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": { "ArnEquals": { "aws:SourceArn": topics } },
        }));
    }
    json!({
        "Type": "AWS::KMS::Key",
        "Condition": CONDITION,
        // Messages (dead letters above all) encrypted under a deleted key are lost: the key
        // outlives the stack.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": "Fleet: encrypts the queues at rest; SNS may use it for the stack's topics",
            "EnableKeyRotation": true,
            "KeyPolicy": { "Version": "2012-10-17", "Statement": statements },
        },
    })
}

/// A queue's encryption properties: its own `kms_key` when the topology names one, none when it
/// turns encryption off, else SSE-SQS or the stack's key by the parameter.
pub fn queue_properties(queue: &QueueDecl) -> Vec<(&'static str, Value)> {
    if let Some(key) = &queue.kms_key {
        return vec![("KmsMasterKeyId", json!(key))];
    }
    if !queue.encrypted {
        return vec![("SqsManagedSseEnabled", json!(false))];
    }
    vec![
        (
            "KmsMasterKeyId",
            // The ARN, as the output gives it: `fleet provision` with that `kms_key` then finds
            // the queue as declared.
            json!({ "Fn::If": [CONDITION, { "Fn::GetAtt": [KEY, "Arn"] }, { "Ref": "AWS::NoValue" }] }),
        ),
        (
            "SqsManagedSseEnabled",
            json!({ "Fn::If": [CONDITION, { "Ref": "AWS::NoValue" }, true] }),
        ),
    ]
}
