//! What `fleet run` checks before it consumes anything: every chosen worker's queue and its
//! dead-letter queue, the topic the workers publish to, and the table. A failure names the
//! resource and the fix, and the process exits before any message is received.

use fleet_bus::{BusError, Transport};

use super::config::{FleetConfig, WorkerKind};

/// A resource `fleet run` cannot start without, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{what} {name}: {problem}; {fix}")]
pub struct Missing {
    /// `queue`, `dead-letter queue`, `topic` or `table`.
    pub what: &'static str,
    /// Its name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
    /// The error behind it.
    #[source]
    pub source: Option<BusError>,
}

const PROVISION: &str = "create it with `fleet provision --topology deploy/topology.toml` (or deploy the stack), or fix the name in the configuration";

/// Explains a failed lookup: a missing resource, a permission the role lacks, or another error.
pub fn explain(what: &'static str, name: &str, e: BusError) -> Missing {
    let (problem, fix) = match &e {
        BusError::NotFound { .. } => ("does not exist".to_owned(), PROVISION.to_owned()),
        BusError::Api {
            code, operation, ..
        } if is_access_denied(code) => (
            format!("{operation} was refused ({code})"),
            format!(
                "allow {} on it in the role `fleet run` uses",
                iam_action(what, operation)
            ),
        ),
        BusError::Api {
            code, operation, ..
        } if code == "ResourceNotFoundException" => (
            format!("does not exist ({operation})"),
            PROVISION.to_owned(),
        ),
        other => (
            fleet_bus::chain_text(other),
            "check the endpoint, region and credentials".to_owned(),
        ),
    };
    Missing {
        what,
        name: name.to_owned(),
        problem,
        fix,
        source: Some(e),
    }
}

fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "AuthorizationError" | "UnauthorizedOperation"
    )
}

/// The IAM action of an operation: `sqs:GetQueueUrl`, `dynamodb:DescribeTable`.
fn iam_action(what: &str, operation: &str) -> String {
    let service = match what {
        "topic" => "sns",
        "table" => "dynamodb",
        _ => "sqs",
    };
    format!("{service}:{operation}")
}

/// Checks every chosen worker's queue and dead-letter queue, and the events topic.
///
/// # Errors
/// The first resource missing or refused.
pub async fn check_bus(
    transport: &dyn Transport,
    config: &FleetConfig,
    workers: &[WorkerKind],
) -> Result<(), Missing> {
    for w in workers {
        let name = config.queue_of(*w);
        let queue = transport
            .queue(name)
            .await
            .map_err(|e| explain("queue", name, e))?;
        let description = queue
            .admin()
            .describe()
            .await
            .map_err(|e| explain("queue", name, e))?;
        let consumer = config.consumer_of(*w);
        let visibility = consumer
            .visibility_timeout
            .unwrap_or(description.visibility_timeout);
        if visibility < fleet_bus::consumer::MIN_VISIBILITY {
            return Err(Missing {
                what: "queue",
                name: name.to_owned(),
                problem: format!(
                    "has a visibility timeout of {visibility:?}, under the 2 s a consumer needs"
                ),
                fix: format!(
                    "raise it in the topology and provision, or set {w}.consumer.visibility_timeout"
                ),
                source: None,
            });
        }
        match description.redrive {
            Some(r) => {
                let dlq = r.dead_letter_queue_name();
                transport
                    .queue(dlq)
                    .await
                    .map_err(|e| explain("dead-letter queue", dlq, e))?;
            }
            None if config.consumer_of(*w).dead_letter_queue.is_none() => {
                return Err(Missing {
                    what: "queue",
                    name: name.to_owned(),
                    problem: "has no redrive policy and the worker no dead_letter_queue".into(),
                    fix: format!(
                        "declare `dead_letter` for it in the topology and provision, or set {w}.consumer.dead_letter_queue"
                    ),
                    source: None,
                });
            }
            None => {
                if let Some(dlq) = &consumer.dead_letter_queue {
                    transport
                        .queue(dlq)
                        .await
                        .map_err(|e| explain("dead-letter queue", dlq, e))?;
                }
            }
        }
    }
    if workers.contains(&WorkerKind::Orders) {
        transport
            .topic(&config.events_topic)
            .await
            .map_err(|e| explain("topic", &config.events_topic, e))?;
    }
    Ok(())
}

/// Checks that the table exists and is readable.
///
/// # Errors
/// When it does not, or the role may not describe it.
pub async fn check_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), Missing> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(explain(
            "table",
            table,
            fleet_bus::aws::api_error(table, "DescribeTable", e),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_call_names_the_action_to_allow() {
        let e = BusError::Api {
            resource: "fleet-orders".into(),
            operation: "GetQueueUrl",
            code: "AccessDenied".into(),
            message: "not authorized".into(),
            retryable: false,
            source: None,
        };
        let m = explain("queue", "fleet-orders", e).to_string();
        assert_eq!(
            m,
            "queue fleet-orders: GetQueueUrl was refused (AccessDenied); allow sqs:GetQueueUrl on it in the role `fleet run` uses"
        );
    }

    #[test]
    fn a_missing_resource_says_how_to_create_it() {
        let e = BusError::NotFound {
            kind: "topic",
            name: "fleet-events".into(),
        };
        let m = explain("topic", "fleet-events", e).to_string();
        assert!(
            m.starts_with("topic fleet-events: does not exist; create it with `fleet provision"),
            "{m}"
        );
    }
}
