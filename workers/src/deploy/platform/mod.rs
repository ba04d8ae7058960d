//! The ECS Fargate, EC2 and Lambda pieces of an export: what runs each worker, how it scales on
//! its queue's backlog, how it drains, and the alarms an operator watches.
//!
//! Every worker gets its own service (ECS), Auto Scaling group (EC2) or function (Lambda), so
//! one busy queue scales its own worker and never another's. Resources outside this module are named by the
//! logical ids the other pieces use: the worker's queue `Queue<Name>`, its dead-letter queue,
//! and its role `Role<Worker>` (the ECS task role, or the EC2 instance role).

mod alarms;
mod ec2;
mod ecs;
pub mod lambda;
mod params;
#[cfg(test)]
mod tests;

use std::time::Duration;

use fleet_bus::topology::Topology;
use serde_json::{Value, json};

use super::{ExportContext, Platform, Template, logical_id};
use crate::run::{FleetConfig, WorkerKind};

pub use ec2::{LIFECYCLE_HOOK, hook_heartbeat};

/// How long a Fargate task may take to stop after SIGTERM at most (ECS's `stopTimeout` limit).
pub const FARGATE_MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the settler may run past `shutdown_timeout` before its report is given up (the
/// consumer's `REPORT_GRACE` in `bus/src/consumer/handle.rs`).
const SETTLER_REPORT_GRACE: Duration = Duration::from_secs(1);

/// How long `fleet run` waits for unexported spans at exit (`SPAN_FLUSH_LIMIT` in
/// `workers/src/cli/run.rs`).
const SPAN_FLUSH: Duration = Duration::from_secs(5);

/// How long releasing ECS task protection may hold up the exit after the drain
/// (`FINAL_RELEASE_LIMIT` in `workers/src/run/protection.rs`).
const PROTECTION_RELEASE: Duration = Duration::from_secs(2);

/// What the kill deadline keeps on top of the worst-case drain: the delivery of SIGTERM and the
/// process's exit, with room to spare. With the shipped 25 s `shutdown_timeout` this makes the
/// ECS `stopTimeout` 45 s, the systemd unit's `TimeoutStopSec`.
const STOP_MARGIN: Duration = Duration::from_secs(12);

/// Adds what runs the workers on `ctx.platform` to `t` (nothing for [`Platform::None`]).
pub fn add(t: &mut Template, ctx: &ExportContext<'_>) {
    if ctx.platform == Platform::None || ctx.workers().is_empty() {
        return;
    }
    params::shared(t, ctx);
    match ctx.platform {
        Platform::None => {}
        Platform::Ecs => ecs::add(t, ctx),
        Platform::Ec2 => ec2::add(t, ctx),
        Platform::Lambda => lambda::add(t, ctx),
    }
    for worker in ctx.workers() {
        alarms::add(t, ctx, worker);
    }
}

/// The longest a `fleet run` takes from SIGTERM to its exit: every worker drains at once within
/// `shutdown_timeout`, the settler's report may take 1 s more, the spans not yet exported get at
/// most 5 s, and the release of ECS task protection at most 2 s.
pub fn worst_case_drain(config: &FleetConfig) -> Duration {
    config.shutdown_timeout + SETTLER_REPORT_GRACE + SPAN_FLUSH + PROTECTION_RELEASE
}

/// How long the platform waits after SIGTERM before it kills the process: the worst-case drain
/// plus a margin. On Fargate this cannot exceed 120 s; [`check`] says when the configuration
/// does not fit.
pub fn stop_timeout(config: &FleetConfig) -> Duration {
    worst_case_drain(config) + STOP_MARGIN
}

/// Why a configuration cannot be deployed on a platform as exported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformError {
    /// The drain needs longer than Fargate lets a task stop.
    #[error(
        "shutdown_timeout {shutdown:?} needs a stop timeout of {needed:?}, above Fargate's limit of 120 s: lower shutdown_timeout to at most {max_shutdown:?}"
    )]
    DrainTooLongForFargate {
        /// The configured `shutdown_timeout`.
        shutdown: Duration,
        /// The stop timeout it needs.
        needed: Duration,
        /// The longest `shutdown_timeout` that fits.
        max_shutdown: Duration,
    },
}

/// Checks that the configuration fits the platform (call it before exporting: [`add`] caps
/// Fargate's `stopTimeout` at 120 s rather than fail).
///
/// # Errors
/// [`PlatformError::DrainTooLongForFargate`] when the drain cannot finish within Fargate's
/// 120 s.
pub fn check(ctx: &ExportContext<'_>) -> Result<(), PlatformError> {
    let needed = stop_timeout(ctx.config);
    if ctx.platform == Platform::Ecs && needed > FARGATE_MAX_STOP_TIMEOUT {
        return Err(PlatformError::DrainTooLongForFargate {
            shutdown: ctx.config.shutdown_timeout,
            needed,
            max_shutdown: FARGATE_MAX_STOP_TIMEOUT - (needed - ctx.config.shutdown_timeout),
        });
    }
    Ok(())
}

/// A worker's log group (`LogGroup<Worker>`, `/fleet/<stack>/<worker>`, kept `LogRetentionDays`):
/// an ECS task's or a Lambda function's.
fn log_group(t: &mut Template, worker: WorkerKind) {
    t.resource(format!("LogGroup{}", title(worker)), json!({
        "Type": "AWS::Logs::LogGroup",
        "Metadata": { "checkov": { "skip": [{
            "id": "CKV_AWS_158",
            "comment": "CloudWatch Logs encrypts every log group at rest; the workers log no message bodies or secrets, so a customer key adds cost and a key policy without protecting more"
        }] } },
        "Properties": {
            "LogGroupName": { "Fn::Sub": format!("/fleet/${{AWS::StackName}}/{}", worker.as_str()) },
            "RetentionInDays": { "Ref": "LogRetentionDays" }
        }
    }));
}

/// A worker's name in logical ids and parameter names (`orders` → `Orders`).
fn title(worker: WorkerKind) -> String {
    logical_id("", worker.as_str())
}

/// Whether the stack creates the queue (declared, or a declared queue's dead-letter queue).
fn stack_queue(topology: &Topology, name: &str) -> bool {
    topology
        .queues
        .iter()
        .any(|q| q.name == name || q.dead_letter.as_ref().is_some_and(|d| d.queue == name))
}

/// A queue's name as CloudWatch's `QueueName` dimension: the stack's queue when it creates it.
fn queue_name(topology: &Topology, name: &str) -> Value {
    if stack_queue(topology, name) {
        json!({ "Fn::GetAtt": [logical_id("Queue", name), "QueueName"] })
    } else {
        json!(name)
    }
}

/// The dead-letter queue of a worker's queue, when the topology gives it one.
fn dead_letter_queue<'t>(topology: &'t Topology, queue: &str) -> Option<&'t str> {
    topology
        .queues
        .iter()
        .find(|q| q.name == queue)
        .and_then(|q| q.dead_letter.as_ref())
        .map(|d| d.queue.as_str())
}

/// The cost-allocation tags of a worker's resources.
fn tags(worker: WorkerKind) -> Vec<(&'static str, Value)> {
    vec![
        ("fleet:worker", json!(worker.as_str())),
        (
            "fleet:service",
            json!({ "Fn::Sub": format!("${{AWS::StackName}}-{}", worker.as_str()) }),
        ),
    ]
}

/// The query that target tracking holds at the worker's target: visible messages ÷ running
/// capacity, the visible count itself when nothing runs (so an empty service still scales out).
fn backlog_per_capacity(queue: Value, capacity: Value, label: &str) -> Value {
    json!([
        {
            "Id": "m1",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{ "Name": "QueueName", "Value": queue }]
                },
                "Stat": "Sum"
            },
            "ReturnData": false
        },
        {
            "Id": "m2",
            "MetricStat": { "Metric": capacity, "Stat": "Average" },
            "ReturnData": false
        },
        {
            "Id": "e1",
            "Expression": "IF(FILL(m2, 0) > 0, m1 / FILL(m2, 0), m1)",
            "Label": label,
            "ReturnData": true
        }
    ])
}
