//! The template parameters an operator sets per stack (network, alarm topic) and per worker
//! (capacity, scaling target, sizes).

use serde_json::{Value, json};

use super::{ExportContext, Platform, Template, title};
use crate::run::WorkerKind;

/// The condition under which alarms notify a topic.
pub(super) const HAS_ALARM_TOPIC: &str = "HasAlarmTopic";

/// CloudWatch Logs' accepted retention periods, in days.
const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn param(t: &mut Template, name: impl Into<String>, value: Value) {
    t.parameters.insert(name.into(), value);
}

/// The parameters every platform shares, and each worker's.
pub(super) fn shared(t: &mut Template, ctx: &ExportContext<'_>) {
    if ctx.platform != Platform::Lambda {
        param(
            t,
            "VpcId",
            json!({
                "Type": "AWS::EC2::VPC::Id",
                "Description": "The VPC the workers run in"
            }),
        );
        param(
            t,
            "PrivateSubnets",
            json!({
                "Type": "List<AWS::EC2::Subnet::Id>",
                "Description": "Private subnets for the workers (no public IP: they reach AWS through a NAT gateway or VPC endpoints)"
            }),
        );
    }
    param(
        t,
        "AlarmTopicArn",
        json!({
            "Type": "String",
            "Default": "",
            "Description": "An SNS topic the alarms notify (empty: the alarms only change state)"
        }),
    );
    t.conditions.insert(
        HAS_ALARM_TOPIC.into(),
        json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "AlarmTopicArn" }, ""] }] }),
    );
    let oldest = ctx
        .config
        .observability
        .oldest_message_target
        .as_secs()
        .max(60);
    param(
        t,
        "OldestMessageTargetSeconds",
        json!({
            "Type": "Number",
            "Default": oldest.to_string(),
            "MinValue": 60,
            "Description": "The oldest-message age operators accept ([observability] oldest_message_target); above it the OldestMessage alarms fire"
        }),
    );
    match ctx.platform {
        Platform::Ecs => ecs(t),
        Platform::Lambda => lambda(t),
        Platform::Ec2 | Platform::None => {}
    }
    for worker in ctx.workers() {
        if ctx.platform == Platform::Lambda {
            lambda_worker(t, ctx, worker);
        } else {
            per_worker(t, ctx, worker);
        }
    }
}

fn log_retention(t: &mut Template) {
    param(
        t,
        "LogRetentionDays",
        json!({
            "Type": "Number",
            "Default": "365",
            "AllowedValues": RETENTION_DAYS.map(|d| d.to_string()),
            "Description": "How long the workers' logs are kept"
        }),
    );
}

fn lambda(t: &mut Template) {
    param(
        t,
        "CodeBucket",
        json!({
            "Type": "String",
            "Description": "The S3 bucket (in this region) holding the fleet-lambda zip"
        }),
    );
    param(
        t,
        "CodeKey",
        json!({
            "Type": "String",
            "Description": format!("The zip's key in CodeBucket, built with `{}` (one zip for every worker; pin a release)", super::lambda::PACKAGE)
        }),
    );
    param(
        t,
        "LambdaArchitecture",
        json!({
            "Type": "String",
            "Default": "x86_64",
            "AllowedValues": ["x86_64", "arm64"],
            "Description": "The architecture the zip was built for (cargo lambda build --arm64 for arm64)"
        }),
    );
    log_retention(t);
}

fn lambda_worker(t: &mut Template, ctx: &ExportContext<'_>, worker: WorkerKind) {
    let w = title(worker);
    let name = worker.as_str();
    param(
        t,
        format!("{w}MemorySize"),
        json!({
            "Type": "Number",
            "Default": "256",
            "MinValue": 128,
            "MaxValue": 10240,
            "Description": format!("Memory of the {name} function, in MB (CPU grows with it)")
        }),
    );
    param(
        t,
        format!("{w}MaximumConcurrency"),
        json!({
            "Type": "Number",
            "Default": "5",
            // The event source mapping's bounds.
            "MinValue": 2,
            "MaxValue": 1000,
            "Description": format!("The most {name} invocations the queue makes at once: the cost cap (and, for email, this x rate_per_second must stay within the provider's send rate)")
        }),
    );
    param(
        t,
        format!("{w}ReservedConcurrency"),
        json!({
            "Type": "Number",
            "Default": "0",
            "MinValue": 0,
            "MaxValue": 1000,
            "Description": format!("Concurrency reserved for the {name} function (0: none). If set, at least {w}MaximumConcurrency, and the account must keep 100 unreserved (aws lambda get-account-settings)")
        }),
    );
    let fifo = fleet_bus::topology::is_fifo_name(ctx.config.queue_of(worker));
    param(
        t,
        format!("{w}BatchSize"),
        json!({
            "Type": "Number",
            "Default": if worker == WorkerKind::Email { "1" } else { "10" },
            "MinValue": 1,
            // A FIFO source takes 10 at most; a standard one up to 10,000 with a batching window.
            "MaxValue": if fifo { 10 } else { 10000 },
            "Description": if worker == WorkerKind::Email {
                format!("Records per {name} invocation: the timeout fits one send (sends_in_flight sends run at once; a record the deadline reaches comes back); above 10 needs a batching window")
            } else {
                format!("Records per {name} invocation (above 10 needs a batching window of at least 1 s)")
            }
        }),
    );
    if !fifo {
        param(
            t,
            format!("{w}MaximumBatchingWindow"),
            json!({
                "Type": "Number",
                "Default": "0",
                "MinValue": 0,
                // Records wait in the mapping while it fills a batch, their visibility running:
                // kept well within the queue's visibility timeout.
                "MaxValue": 60,
                "Description": format!("Seconds the {name} event source mapping may wait to fill a batch (0: invoke as soon as records arrive; at least 1 for a batch size above 10)")
            }),
        );
    }
}

fn ecs(t: &mut Template) {
    param(
        t,
        "ImageRepository",
        json!({
            "Type": "String",
            "Default": "fleet",
            "Description": "The ECR repository (in this account and region) holding the fleet image (deploy/docker/Dockerfile)"
        }),
    );
    param(
        t,
        "ImageTag",
        json!({
            "Type": "String",
            "Description": "The image tag to run (pin a release; every worker runs the same image)"
        }),
    );
    param(
        t,
        "CpuArchitecture",
        json!({
            "Type": "String",
            "Default": "X86_64",
            "AllowedValues": ["X86_64", "ARM64"],
            "Description": "The architecture the image was built for"
        }),
    );
    log_retention(t);
}

fn per_worker(t: &mut Template, ctx: &ExportContext<'_>, worker: WorkerKind) {
    let w = title(worker);
    let name = worker.as_str();
    let unit = match ctx.platform {
        Platform::Ec2 => "instances",
        Platform::Ecs | Platform::None | Platform::Lambda => "tasks",
    };
    param(
        t,
        format!("{w}MinCapacity"),
        json!({
            "Type": "Number",
            "Default": "1",
            // Backlog per task cannot start a first task: with none running the metric is the
            // whole backlog, which may stay under the target for ever (see deploy/README.md).
            "MinValue": 1,
            "Description": format!("The fewest {name} {unit} (at least 1)")
        }),
    );
    param(
        t,
        format!("{w}MaxCapacity"),
        json!({
            "Type": "Number",
            "Default": "10",
            "MinValue": 1,
            "Description": format!("The most {name} {unit}")
        }),
    );
    param(
        t,
        format!("{w}BacklogTarget"),
        json!({
            "Type": "Number",
            "Default": "100",
            "MinValue": 1,
            "Description": format!(
                "Visible messages per {} the {name} scaling holds: acceptable latency / processing time per message; compute it with `fleet scaling target --latency 30s --worker {name}`",
                unit.trim_end_matches('s')
            )
        }),
    );
    match ctx.platform {
        Platform::Ecs => {
            param(
                t,
                format!("{w}Cpu"),
                json!({
                    "Type": "String",
                    "Default": "256",
                    "AllowedValues": ["256", "512", "1024", "2048", "4096", "8192", "16384"],
                    "Description": format!("CPU units of one {name} task (1024 = 1 vCPU)")
                }),
            );
            param(
                t,
                format!("{w}Memory"),
                json!({
                    "Type": "String",
                    "Default": "512",
                    "Description": format!("Memory of one {name} task, in MiB (a Fargate combination with its CPU)")
                }),
            );
        }
        Platform::Ec2 => {
            param(
                t,
                format!("{w}InstanceType"),
                json!({
                    "Type": "String",
                    "Default": "t3.small",
                    "Description": format!("The instance type of {name} instances (its architecture must match ImageId's and the bundle's)")
                }),
            );
        }
        Platform::None | Platform::Lambda => {}
    }
}

/// Alarm actions: the alarm topic when one is given.
pub(super) fn alarm_actions() -> Value {
    json!({ "Fn::If": [HAS_ALARM_TOPIC, [{ "Ref": "AlarmTopicArn" }], { "Ref": "AWS::NoValue" }] })
}
