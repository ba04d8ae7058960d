//! The resource-policy statements Fleet puts on queues and topics, built once for both ways of
//! creating them: `fleet provision` (ARNs as strings) and the exported CloudFormation template
//! (ARNs as intrinsic functions such as `{"Fn::GetAtt": [...]}`). Both write the same statement
//! ids and shapes, so applying one over the other changes nothing.

use serde_json::{Value, json};

/// The id of the statement that refuses plain-HTTP requests.
pub const TLS_ONLY_SID: &str = "fleet-tls-only";

/// The id of the statement that lets one topic deliver to a queue.
pub fn topic_send_sid(topic_name: &str) -> String {
    format!("fleet-sns-{topic_name}")
}

/// Denies every SQS action on `queue_arn` to any principal over plain HTTP
/// (`aws:SecureTransport` false), so neither a client nor a misconfigured endpoint can read or
/// write messages unencrypted in transit.
pub fn queue_tls_only_statement(queue_arn: Value) -> Value {
    tls_only(queue_arn, "sqs:*")
}

/// Denies `sns:Publish` on `topic_arn` over plain HTTP (the action AWS's own example for
/// enforcing encryption in transit on a topic names).
pub fn topic_tls_only_statement(topic_arn: Value) -> Value {
    tls_only(topic_arn, "sns:Publish")
}

fn tls_only(resource: Value, action: &str) -> Value {
    json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// Lets the topic `topic_arn` (named `topic_name`) send to `queue_arn`, and nobody else through
/// this statement (`aws:SourceArn`).
pub fn topic_send_statement(queue_arn: Value, topic_arn: Value, topic_name: &str) -> Value {
    json!({
        "Sid": topic_send_sid(topic_name),
        "Effect": "Allow",
        "Principal": { "Service": "sns.amazonaws.com" },
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
    })
}

/// A policy document holding `statements`.
pub fn policy_document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_statement_denies_plain_http_to_everyone() {
        let s = queue_tls_only_statement(json!("arn:aws:sqs:us-east-1:1:q"));
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Principal"], "*");
        assert_eq!(s["Action"], "sqs:*");
        assert_eq!(s["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(
            topic_tls_only_statement(json!({"Ref": "TopicX"}))["Resource"]["Ref"],
            "TopicX"
        );
    }
}
