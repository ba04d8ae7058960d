//! Merging Fleet's statements into a resource policy that may hold others (an operator's, or
//! SNS's default statement on a topic), by statement id, so a second run changes nothing.

use serde_json::{Value, json};

use crate::topology::policy::{
    queue_tls_only_statement, topic_send_statement, topic_tls_only_statement,
};

/// The queue policy with a statement that lets `topic_arn` send to `queue_arn`, or `None` when
/// the existing policy already has exactly that statement. Other statements are kept.
pub(crate) fn with_topic_permission(
    existing: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
    topic_name: &str,
) -> Option<String> {
    with_statement(
        existing,
        topic_send_statement(json!(queue_arn), json!(topic_arn), topic_name),
    )
}

/// The queue policy with the TLS-only statement, or `None` when it already has it.
pub(crate) fn with_queue_tls_only(existing: Option<&str>, queue_arn: &str) -> Option<String> {
    with_statement(existing, queue_tls_only_statement(json!(queue_arn)))
}

/// The topic policy with the TLS-only statement, or `None` when it already has it.
pub(crate) fn with_topic_tls_only(existing: Option<&str>, topic_arn: &str) -> Option<String> {
    with_statement(existing, topic_tls_only_statement(json!(topic_arn)))
}

/// `existing` with `statement` added, or replacing the statement of the same `Sid`; `None` when
/// that statement is already there as is.
fn with_statement(existing: Option<&str>, statement: Value) -> Option<String> {
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
    let wanted = statement.get("Sid").cloned();
    match statements
        .iter_mut()
        .find(|s| s.get("Sid") == wanted.as_ref())
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
        let p = with_queue_tls_only(Some(&p), Q).expect("tls");
        let v: Value = serde_json::from_str(&p).unwrap();
        let sids: Vec<&str> = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "ops",
                "fleet-sns-events",
                "fleet-sns-audit",
                "fleet-tls-only"
            ]
        );
        assert_eq!(with_queue_tls_only(Some(&p), Q), None);
    }

    #[test]
    fn replaces_a_stale_statement() {
        let old = with_topic_permission(None, Q, "arn:aws:sns:us-east-1:1:old", "events").unwrap();
        let new = with_topic_permission(Some(&old), Q, T, "events").expect("changed");
        assert!(new.contains(T) && !new.contains(":old"));
    }

    #[test]
    fn a_topic_keeps_its_default_statement() {
        let default = r#"{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:Publish"],"Resource":"x"}]}"#;
        let p = with_topic_tls_only(Some(default), T).expect("added");
        assert!(p.contains("__default_statement_ID") && p.contains("fleet-tls-only"));
        assert_eq!(with_topic_tls_only(Some(&p), T), None);
    }
}
