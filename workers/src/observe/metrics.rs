//! The workers' metrics, declared once: their names, what each one means ([`CATALOGUE`], which
//! the README's table and the tests read), their HELP texts ([`describe`]), and the Prometheus
//! recorder of `fleet run` ([`install`]) with real histogram buckets for every histogram of the
//! process, the bus's included.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::ObserveError;

pub use fleet_bus::metrics::{MetricDoc, MetricKind, describe_all};

/// `ApproximateNumberOfMessages` of a worker's queue.
pub const QUEUE_VISIBLE: &str = "fleet_queue_visible_messages";
/// `ApproximateNumberOfMessagesNotVisible` of a worker's queue.
pub const QUEUE_IN_FLIGHT: &str = "fleet_queue_in_flight_messages";
/// `ApproximateNumberOfMessagesDelayed` of a worker's queue.
pub const QUEUE_DELAYED: &str = "fleet_queue_delayed_messages";
/// Visible and in-flight messages of a worker's dead-letter queue.
pub const DEAD_LETTER_MESSAGES: &str = "fleet_dead_letter_messages";
/// Visible messages waiting for a worker: the autoscaling signal.
pub const WORKER_BACKLOG: &str = "fleet_worker_backlog_messages";
/// `oldest_message_target` from the configuration.
pub const OLDEST_MESSAGE_TARGET: &str = "fleet_oldest_message_target_seconds";
/// 1 when a worker is ready (the rule of `/readyz`).
pub const WORKER_READY: &str = "fleet_worker_ready";
/// 1, labelled with the build's version.
pub const BUILD_INFO: &str = "fleet_build_info";
/// HTTP requests to AWS, the SDK's retries included.
pub const AWS_REQUESTS: &str = "fleet_aws_requests_total";
/// AWS operations that failed after the SDK's retries.
pub const AWS_ERRORS: &str = "fleet_aws_errors_total";
/// Estimated DynamoDB read request units (declared with their estimate in `cost::units`).
pub use crate::cost::units::READ_UNITS as DYNAMODB_READ_UNITS;
/// Estimated DynamoDB write request units (declared with their estimate in `cost::units`).
pub use crate::cost::units::WRITE_UNITS as DYNAMODB_WRITE_UNITS;
/// The email worker's sends by outcome.
pub const EMAIL_SENDS: &str = "fleet_email_sends_total";
/// Sends the mail provider throttled.
pub const EMAIL_THROTTLES: &str = "fleet_email_throttles_total";
/// The email send rate in force.
pub const EMAIL_SEND_RATE: &str = "fleet_email_send_rate_per_second";
/// 1 while the email worker's polling is paused.
pub const EMAIL_PAUSED: &str = "fleet_email_paused";
/// Sends whose outcome is unknown (never retried).
pub const EMAIL_DELIVERY_UNKNOWN: &str = "fleet_email_delivery_unknown_total";
/// Requests found sent already.
pub const EMAIL_DUPLICATES: &str = "fleet_email_duplicates_total";
/// Sent emails that could not be marked sent.
pub const EMAIL_UNMARKED: &str = "fleet_email_unmarked_total";
/// Analytics events by outcome.
pub const ANALYTICS_EVENTS: &str = "fleet_analytics_events_total";
/// `TransactWriteItems` calls of the analytics counter store by outcome.
pub const ANALYTICS_TRANSACTIONS: &str = "fleet_analytics_transactions_total";
/// Calls to the ECS agent's task protection endpoint by operation and outcome.
pub const TASK_PROTECTION_CALLS: &str = "fleet_task_protection_calls_total";
/// 1 while the ECS task is protected from scale-in.
pub const TASK_PROTECTED: &str = "fleet_task_protected";

const WORKER_QUEUE: &[&str] = &["worker", "queue"];
const WORKER: &[&str] = &["worker"];
const OUTCOME: &[&str] = &["outcome"];
const NONE: &[&str] = &[];

const fn doc(
    name: &'static str,
    kind: MetricKind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

use MetricKind::{Counter, Gauge};
const COUNT: Unit = Unit::Count;
const SECONDS: Unit = Unit::Seconds;

/// Every metric of the workers and of `fleet run`.
pub const CATALOGUE: &[MetricDoc] = &[
    doc(
        QUEUE_VISIBLE,
        Gauge,
        COUNT,
        WORKER_QUEUE,
        "Messages ready to be received in the worker's queue (ApproximateNumberOfMessages), read every queue_stats_interval.",
    ),
    doc(
        QUEUE_IN_FLIGHT,
        Gauge,
        COUNT,
        WORKER_QUEUE,
        "Messages received and not yet deleted in the worker's queue (ApproximateNumberOfMessagesNotVisible).",
    ),
    doc(
        QUEUE_DELAYED,
        Gauge,
        COUNT,
        WORKER_QUEUE,
        "Messages delayed in the worker's queue (ApproximateNumberOfMessagesDelayed).",
    ),
    doc(
        DEAD_LETTER_MESSAGES,
        Gauge,
        COUNT,
        WORKER_QUEUE,
        "Visible and in-flight messages in the worker's dead-letter queue (queue is the dead-letter queue).",
    ),
    doc(
        WORKER_BACKLOG,
        Gauge,
        COUNT,
        WORKER,
        "Visible messages waiting for this worker: the autoscaling signal (divide by the running processes for the backlog per task).",
    ),
    doc(
        OLDEST_MESSAGE_TARGET,
        Gauge,
        SECONDS,
        WORKER,
        "The age of the oldest waiting message operators accept (oldest_message_target).",
    ),
    doc(
        WORKER_READY,
        Gauge,
        COUNT,
        WORKER,
        "1 when the worker is ready (queue and dead-letter queue resolved, polling, not paused, receives not failing for longer than unready_after), else 0.",
    ),
    doc(
        BUILD_INFO,
        Gauge,
        COUNT,
        &["version"],
        "Always 1; the version label is the fleet build's version.",
    ),
    doc(
        AWS_REQUESTS,
        Counter,
        COUNT,
        &["operation"],
        "HTTP requests sent to AWS, the SDK's retries included, by IAM action (sqs:ReceiveMessage).",
    ),
    doc(
        AWS_ERRORS,
        Counter,
        COUNT,
        &["operation", "error_type"],
        "AWS operations that failed after the SDK's retries, by IAM action and error class.",
    ),
    doc(
        DYNAMODB_WRITE_UNITS,
        Counter,
        COUNT,
        &["operation"],
        "Estimated DynamoDB write request units, by IAM action (dynamodb:TransactWriteItems).",
    ),
    doc(
        DYNAMODB_READ_UNITS,
        Counter,
        COUNT,
        &["operation"],
        "Estimated DynamoDB read request units, by IAM action (dynamodb:GetItem).",
    ),
    doc(
        EMAIL_SENDS,
        Counter,
        COUNT,
        OUTCOME,
        "The email worker's sends by outcome: sent, rejected, throttled, failed, paused, unknown.",
    ),
    doc(
        EMAIL_THROTTLES,
        Counter,
        COUNT,
        NONE,
        "Sends the mail provider throttled (retried later).",
    ),
    doc(
        EMAIL_SEND_RATE,
        Gauge,
        Unit::CountPerSecond,
        NONE,
        "The email send rate in force (sends per second, per process).",
    ),
    doc(
        EMAIL_PAUSED,
        Gauge,
        COUNT,
        NONE,
        "1 while the email worker's polling is paused because the provider says the account cannot send.",
    ),
    doc(
        EMAIL_DELIVERY_UNKNOWN,
        Counter,
        COUNT,
        NONE,
        "Email requests whose send outcome is unknown: never sent again, dead-lettered as delivery_unknown.",
    ),
    doc(
        EMAIL_DUPLICATES,
        Counter,
        COUNT,
        NONE,
        "Email requests found sent already (not sent again).",
    ),
    doc(
        EMAIL_UNMARKED,
        Counter,
        COUNT,
        NONE,
        "Emails sent that could not be marked sent within their claim's lease.",
    ),
    doc(
        ANALYTICS_EVENTS,
        Counter,
        COUNT,
        &["queue", "outcome"],
        "Analytics events by outcome: applied, duplicate, skipped, failed (retried), refused (dead-lettered).",
    ),
    doc(
        ANALYTICS_TRANSACTIONS,
        Counter,
        COUNT,
        OUTCOME,
        "TransactWriteItems calls of the analytics counter store by outcome: committed, cancelled, failed.",
    ),
    doc(
        TASK_PROTECTION_CALLS,
        Counter,
        COUNT,
        &["operation", "outcome"],
        "Calls to the ECS agent's task scale-in protection endpoint: operation protect or release, outcome ok or failed (a failure never stops the workers).",
    ),
    doc(
        TASK_PROTECTED,
        Gauge,
        COUNT,
        NONE,
        "1 while the ECS task holds scale-in protection (messages in flight), else 0.",
    ),
];

/// Registers the HELP text and unit of every metric in [`CATALOGUE`] with the installed
/// recorder (without one, it does nothing).
pub fn describe() {
    describe_all(CATALOGUE);
}

use fleet_bus::metrics::{HANDLER_BUCKETS, HISTOGRAM_BUCKETS};

/// The installed recorder's handle: one recorder per process, however many times `install` runs.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's metrics recorder (once; later calls return
/// the same handle), describes the catalogue and sets `fleet_build_info`.
///
/// # Errors
/// When another recorder is installed already.
pub fn install() -> Result<PrometheusHandle, ObserveError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = &*installed {
        return Ok(handle.clone());
    }
    // Every histogram gets real buckets (a histogram not listed gets the handler's), so the
    // exporter never falls back to a summary.
    let mut builder = PrometheusBuilder::new().set_buckets(HANDLER_BUCKETS)?;
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    let handle = builder.install_recorder()?;
    fleet_bus::metrics::describe();
    fleet_schemas::metrics::describe();
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    *installed = Some(handle.clone());
    Ok(handle)
}

/// How often the recorder folds recent histogram samples into its buckets between scrapes, so
/// memory stays bounded when nobody scrapes.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep every [`UPKEEP_INTERVAL`] until aborted.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        for d in CATALOGUE {
            let problems: Vec<String> = d
                .problems()
                .into_iter()
                // The build's version is a constant label: one series per process.
                .filter(|p| !(d.name == BUILD_INFO && p.contains("label version")))
                .collect();
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn every_name_is_declared_once() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn histogram_buckets_increase() {
        for (name, buckets) in HISTOGRAM_BUCKETS {
            assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{name}");
        }
    }
}
