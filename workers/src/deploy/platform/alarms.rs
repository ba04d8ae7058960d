//! The alarms of one worker, each explained in deploy/README.md ("Alarms"): its dead-letter
//! queue holds messages, its oldest message is older than the target, nothing is consumed while
//! a backlog waits, and fewer tasks or instances run than desired (on Lambda instead: invocations
//! fail as a whole, or the function runs at its concurrency cap).

use serde_json::{Value, json};

use super::params::alarm_actions;
use super::{ExportContext, Platform, Template, dead_letter_queue, queue_name, title};
use crate::run::WorkerKind;

/// A consumer whose handlers all run long jobs deletes nothing for a while; ten minutes is
/// twice the default `handler_timeout` (5 min), after which every such job has ended.
const STALLED_MINUTES: u32 = 10;

/// Tasks start within a minute or two; instances boot and download in a few. Below that, a
/// shortfall is a deploy or a scale-out in progress, not a failure.
fn capacity_minutes(platform: Platform) -> u32 {
    match platform {
        Platform::Ec2 => 10,
        Platform::Ecs | Platform::None | Platform::Lambda => 5,
    }
}

pub(super) fn add(t: &mut Template, ctx: &ExportContext<'_>, worker: WorkerKind) {
    let w = title(worker);
    let name = worker.as_str();
    let queue_decl = ctx.config.queue_of(worker);
    let queue = queue_name(ctx.topology, queue_decl);
    if let Some(dlq) = dead_letter_queue(ctx.topology, queue_decl) {
        t.resource(format!("Alarm{w}DeadLetters"), alarm(json!({
            "AlarmDescription": format!("The {name} worker's dead-letter queue holds messages: read them with `fleet dlq inspect`, fix the cause, then `fleet dlq redrive` (deploy/README.md: Alarms)"),
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{ "Name": "QueueName", "Value": queue_name(ctx.topology, dlq) }],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching"
        })));
    }
    t.resource(format!("Alarm{w}OldestMessage"), alarm(json!({
        "AlarmDescription": format!("The {name} queue's oldest message has waited longer than the target for 3 minutes: consumers are too few, too slow or failing (deploy/README.md: Alarms)"),
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Dimensions": [{ "Name": "QueueName", "Value": queue.clone() }],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 3,
        "Threshold": { "Ref": "OldestMessageTargetSeconds" },
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"
    })));
    t.resource(format!("Alarm{w}NotConsuming"), alarm(json!({
        "AlarmDescription": format!("Messages wait on the {name} queue but none has been deleted for {STALLED_MINUTES} minutes: no consumer runs, or every one is stuck or paused (deploy/README.md: Alarms)"),
        "Metrics": [
            sqs_query("visible", "ApproximateNumberOfMessagesVisible", "Maximum", &queue),
            sqs_query("deleted", "NumberOfMessagesDeleted", "Sum", &queue),
            {
                "Id": "stalled",
                // SQS may publish no NumberOfMessagesDeleted point for a minute without deletes.
                "Expression": "IF(visible > 0 AND FILL(deleted, 0) == 0, 1, 0)",
                "Label": "Backlog without consumption",
                "ReturnData": true
            }
        ],
        "EvaluationPeriods": STALLED_MINUTES,
        "DatapointsToAlarm": STALLED_MINUTES,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"
    })));
    if ctx.platform == Platform::Lambda {
        lambda(t, worker);
        return;
    }
    let (desired, running) = capacity_metrics(ctx.platform, &w);
    let minutes = capacity_minutes(ctx.platform);
    let unit = if ctx.platform == Platform::Ec2 {
        "in-service instances"
    } else {
        "running tasks"
    };
    t.resource(format!("Alarm{w}BelowDesired"), alarm(json!({
        "AlarmDescription": format!("Fewer {name} {unit} than desired for {minutes} minutes: tasks or instances fail to start or keep failing their health check (deploy/README.md: Alarms)"),
        "Metrics": [
            { "Id": "desired", "MetricStat": { "Metric": desired, "Period": 60, "Stat": "Average" }, "ReturnData": false },
            { "Id": "running", "MetricStat": { "Metric": running, "Period": 60, "Stat": "Average" }, "ReturnData": false },
            { "Id": "missing", "Expression": "desired - running", "Label": "Desired but not running", "ReturnData": true }
        ],
        "EvaluationPeriods": minutes,
        "DatapointsToAlarm": minutes,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"
    })));
}

/// A function's alarms: invocations that fail as a whole (a crash, an out-of-memory, a timeout, an
/// environment that cannot start) hand their whole batch back; a function held at its reserved
/// concurrency lets the backlog grow.
fn lambda(t: &mut Template, worker: WorkerKind) {
    let w = title(worker);
    let name = worker.as_str();
    let function = json!([{ "Name": "FunctionName", "Value": { "Ref": format!("Function{w}") } }]);
    t.resource(format!("Alarm{w}FunctionErrors"), alarm(json!({
        "AlarmDescription": format!("{name} invocations fail as a whole for 3 minutes (a crash, out of memory, the timeout, or an environment that cannot start): their batches come back and count towards the dead-letter queue; read the function's log group (deploy/README.md: Alarms)"),
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": function.clone(),
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 3,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"
    })));
    t.resource(format!("Alarm{w}AtConcurrencyCap"), alarm(json!({
        "AlarmDescription": format!("The {name} function has run at its maximum concurrency for 15 minutes: the cap holds the backlog back; raise {w}MaximumConcurrency if the cost allows (deploy/README.md: Alarms)"),
        "Namespace": "AWS/Lambda",
        "MetricName": "ConcurrentExecutions",
        "Dimensions": function,
        "Statistic": "Maximum",
        "Period": 60,
        "Threshold": { "Ref": format!("{w}MaximumConcurrency") },
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 15,
        "DatapointsToAlarm": 15,
        "TreatMissingData": "notBreaching"
    })));
}

/// An alarm resource notifying the alarm topic (when given) on alarm and on recovery.
fn alarm(mut properties: Value) -> Value {
    properties["ActionsEnabled"] = json!(true);
    properties["AlarmActions"] = alarm_actions();
    properties["OKActions"] = alarm_actions();
    json!({ "Type": "AWS::CloudWatch::Alarm", "Properties": properties })
}

fn sqs_query(id: &str, metric: &str, stat: &str, queue: &Value) -> Value {
    json!({
        "Id": id,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": metric,
                "Dimensions": [{ "Name": "QueueName", "Value": queue }]
            },
            "Period": 60,
            "Stat": stat
        },
        "ReturnData": false
    })
}

/// The desired and the running capacity of a worker's service (ECS) or group (EC2).
fn capacity_metrics(platform: Platform, w: &str) -> (Value, Value) {
    match platform {
        Platform::Ec2 => {
            let group = json!([{ "Name": "AutoScalingGroupName", "Value": { "Ref": format!("AutoScalingGroup{w}") } }]);
            (
                json!({ "Namespace": "AWS/AutoScaling", "MetricName": "GroupDesiredCapacity", "Dimensions": group.clone() }),
                json!({ "Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances", "Dimensions": group }),
            )
        }
        Platform::Ecs | Platform::None | Platform::Lambda => {
            let service = json!([
                { "Name": "ClusterName", "Value": { "Ref": "Cluster" } },
                { "Name": "ServiceName", "Value": { "Fn::GetAtt": [format!("Service{w}"), "Name"] } }
            ]);
            (
                json!({ "Namespace": "ECS/ContainerInsights", "MetricName": "DesiredTaskCount", "Dimensions": service.clone() }),
                json!({ "Namespace": "ECS/ContainerInsights", "MetricName": "RunningTaskCount", "Dimensions": service }),
            )
        }
    }
}
