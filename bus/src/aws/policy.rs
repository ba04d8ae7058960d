//! The SQS queue policy statement that lets an SNS topic deliver to a queue.

use serde_json::{Value, json};

/// The statement id Fleet gives the permission of one topic.
fn sid(topic_name: &str) -> String {
    format!("fleet-sns-{topic_name}")
}

/// The queue policy with a statement that lets `topic_arn` send to `queue_arn`, or `None` when
/// the existing policy already has exactly that statement. Other statements are kept.
pub(crate) fn with_topic_permission(
    existing: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
    topic_name: &str,
) -> Option<String> {
    let statement = json!({
        "Sid": sid(topic_name),
        "Effect": "Allow",
        "Principal": { "Service": "sns.amazonaws.com" },
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
    });
    let mut policy: Value = existing
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| serde_json::from_str(p).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({ "Version": "2012-10-17", "Statement": [] }));
    let statements = match policy.get_mut("Statement") {
        Some(Value::Array(s)) => s,
        Some(single) => {
            // A single statement object is legal; normalise to an array.
            let one = single.take();
            *single = Value::Array(vec![one]);
            single.as_array_mut()?
        }
        None => {
            policy["Statement"] = json!([]);
            policy["Statement"].as_array_mut()?
        }
    };
    let wanted = sid(topic_name);
    match statements
        .iter_mut()
        .find(|s| s.get("Sid").and_then(Value::as_str) == Some(&wanted))
    {
        Some(s) if *s == statement => return None,
        Some(s) => *s = statement,
        None => statements.push(statement),
    }
    Some(policy.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "arn:aws:sqs:us-east-1:1:orders";
    const T: &str = "arn:aws:sns:us-east-1:1:events";

    #[test]
    fn adds_once_and_then_reports_no_change() {
        let first = with_topic_permission(None, Q, T, "events").expect("added");
        assert!(first.contains("sns.amazonaws.com") && first.contains(T));
        assert_eq!(with_topic_permission(Some(&first), Q, T, "events"), None);
    }

    #[test]
    fn keeps_other_statements_and_topics() {
        let other = r#"{"Version":"2012-10-17","Statement":{"Sid":"ops","Effect":"Allow","Principal":"*","Action":"sqs:ReceiveMessage"}}"#;
        let p = with_topic_permission(Some(other), Q, T, "events").expect("added");
        let p = with_topic_permission(Some(&p), Q, "arn:aws:sns:us-east-1:1:audit", "audit")
            .expect("second topic");
        let v: Value = serde_json::from_str(&p).unwrap();
        let sids: Vec<&str> = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["ops", "fleet-sns-events", "fleet-sns-audit"]);
    }

    #[test]
    fn replaces_a_stale_statement() {
        let old = with_topic_permission(None, Q, "arn:aws:sns:us-east-1:1:old", "events").unwrap();
        let new = with_topic_permission(Some(&old), Q, T, "events").expect("changed");
        assert!(new.contains(T) && !new.contains(":old"));
    }
}
