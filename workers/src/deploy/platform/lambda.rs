//! AWS Lambda: per worker a function running the `fleet-lambda` bootstrap (the same handler
//! `fleet run` runs), its log group, and an SQS event source mapping with partial batch
//! responses (`ReportBatchItemFailures`).
//!
//! - **Timeout, tuned to the handler** ([`function_timeout`]): long enough for one record's
//!   handler to outlast a stalled AWS call and finish, and for the email worker for one whole
//!   send (the mailer's `send_timeout`) with its claim and mark-as-sent around it. Records not
//!   finished by then are reported as failures and come back; the adapter stops handlers before
//!   the deadline, so a slow batch never times the invocation out.
//! - **Visibility, at least 6× the timeout**, as AWS advises for an SQS event source (a batch
//!   waits in the mapping while the function retries a throttle): the worker's queue, when the
//!   stack creates it, gets the larger of the topology's visibility timeout and 6× the function
//!   timeout. On Lambda the visibility timeout is also the backoff of a transient failure.
//! - **A cost cap**: the mapping's maximum concurrency (`<Worker>MaximumConcurrency`), the most
//!   invocations the queue makes at once, and optionally reserved concurrency
//!   (`<Worker>ReservedConcurrency`, 0 for none: Lambda refuses a reservation that leaves the
//!   account fewer than 100 unreserved, which small accounts cannot spare). Reserved below the
//!   maximum concurrency, batches are throttled, and a throttled batch counts a receive towards
//!   the dead-letter queue for nothing: keep it at least the maximum concurrency.
//! - **The role** is the worker's derived role (`Role<Worker>`, assumed by Lambda) plus writing
//!   to its own log group.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ExportContext, Template, log_group, stack_queue, tags, title};
use crate::deploy::{logical_id, queue_arn};
use crate::run::config::MailerKind;
use crate::run::{FleetConfig, WorkerKind};

/// The variable that names the worker a function runs (`fleet_lambda::WORKER_VAR`).
pub const WORKER_VAR: &str = "FLEET_LAMBDA_WORKER";

/// Where the function finds `fleet run`'s configuration: the zip's root, which is the working
/// directory of a function (`/var/task`); see [`PACKAGE`].
pub const CONFIG_IN_PACKAGE: &str = "/var/task/deploy/fleet.toml";

/// How the code is packaged (deploy/README.md: Lambda): one zip for every worker, the
/// configuration and the email templates beside the binary, as the function reads them.
pub const PACKAGE: &str = "cargo lambda build --release -p fleet-lambda --output-format zip --include deploy/fleet.toml --include deploy/templates";

/// The longest a Lambda function may run.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

/// What one record's handler gets on top of its own calls' time: one AWS call attempt that
/// stalls is cut at 10 s (`fleet_bus::aws::ATTEMPT_TIMEOUT`), so 30 s lets a record outlast a
/// stalled attempt and its retry, and leaves the adapter its settling margin.
const HANDLER_TIME: Duration = Duration::from_secs(30);

/// Around one email send: the claim before it, the mark-as-sent and the `email.sent` publish
/// after it (one stalled attempt each, cut at 10 s), and the adapter's settling margin (2 s).
const CLAIM_AND_MARK: Duration = Duration::from_secs(32);

/// How much longer than the function timeout the queue's visibility timeout must be (AWS: "at
/// least six times the timeout that you configure on your function").
pub const VISIBILITY_FACTOR: u32 = 6;

/// The function timeout of `worker`: [`HANDLER_TIME`], and for the email worker its mailer's
/// `send_timeout` with the claim and the mark around it.
pub fn function_timeout(config: &FleetConfig, worker: WorkerKind) -> Duration {
    let needed = match worker {
        WorkerKind::Orders | WorkerKind::Analytics => HANDLER_TIME,
        WorkerKind::Email => {
            let send = match config.email.mailer {
                MailerKind::Smtp => config.email.smtp.send_timeout,
                MailerKind::Ses | MailerKind::Memory => config.email.ses.send_timeout,
            };
            (send + CLAIM_AND_MARK).max(HANDLER_TIME)
        }
    };
    needed.min(MAX_TIMEOUT)
}

/// The visibility timeout the worker's queue needs on Lambda: the topology's, or 6× the
/// function timeout when that is longer.
pub fn queue_visibility(ctx: &ExportContext<'_>, worker: WorkerKind) -> u64 {
    let declared = ctx
        .topology
        .queues
        .iter()
        .find(|q| q.name == ctx.config.queue_of(worker))
        .map_or(0, |q| u64::from(q.visibility_timeout_seconds));
    declared.max(function_timeout(ctx.config, worker).as_secs() * u64::from(VISIBILITY_FACTOR))
}

pub(super) fn add(t: &mut Template, ctx: &ExportContext<'_>) {
    for worker in ctx.workers() {
        let w = title(worker);
        let queue = ctx.config.queue_of(worker);
        raise_visibility(t, ctx, worker);
        let reserved = format!("Has{w}ReservedConcurrency");
        t.conditions.insert(
            reserved.clone(),
            json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": format!("{w}ReservedConcurrency") }, "0"] }] }),
        );
        // Named as the ECS workers' are; the function writes there (LoggingConfig).
        log_group(t, worker);
        t.resource(format!("Function{w}"), function(ctx, worker));
        let mut mapping = json!({
            "EventSourceArn": queue_arn(ctx.topology, queue),
            "FunctionName": { "Ref": format!("Function{w}") },
            "Enabled": true,
            "BatchSize": { "Ref": format!("{w}BatchSize") },
            // Transient failures come back one by one; the rest of the batch is deleted.
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": { "MaximumConcurrency": { "Ref": format!("{w}MaximumConcurrency") } }
        });
        if !fleet_bus::topology::is_fifo_name(queue) {
            // FIFO event sources take no batching window.
            mapping["MaximumBatchingWindowInSeconds"] =
                json!({ "Ref": format!("{w}MaximumBatchingWindow") });
        }
        t.resource(
            format!("EventSourceMapping{w}"),
            json!({ "Type": "AWS::Lambda::EventSourceMapping", "Properties": mapping }),
        );
    }
}

/// Sets the worker's queue's visibility timeout to [`queue_visibility`] when the stack creates
/// the queue (a queue it does not create is the operator's to size; the function says so).
fn raise_visibility(t: &mut Template, ctx: &ExportContext<'_>, worker: WorkerKind) {
    let queue = ctx.config.queue_of(worker);
    if !stack_queue(ctx.topology, queue) {
        return;
    }
    let needed = queue_visibility(ctx, worker);
    let Some(resource) = t.resources.get_mut(&logical_id("Queue", queue)) else {
        return;
    };
    if resource["Properties"]["VisibilityTimeout"].as_u64() < Some(needed) {
        resource["Properties"]["VisibilityTimeout"] = json!(needed);
        // Beside whatever metadata the queue has (a null becomes an object).
        resource["Metadata"]["fleet"]["why"] = json!([format!(
            "VisibilityTimeout {needed} s: {VISIBILITY_FACTOR}x the {worker} function's timeout, as AWS advises for an SQS event source (the topology declares less, for fleet run); on Lambda it is also the backoff of a transient failure"
        )]);
    }
}

fn function(ctx: &ExportContext<'_>, worker: WorkerKind) -> Value {
    let w = title(worker);
    let timeout = function_timeout(ctx.config, worker);
    let mut why = vec![format!(
        "Timeout {} s: {}",
        timeout.as_secs(),
        match worker {
            WorkerKind::Email =>
                "one whole send (the mailer's send_timeout) with its claim and mark-as-sent",
            _ => "one record's handler outlasting a stalled AWS call attempt (10 s) and its retry",
        }
    )];
    if !stack_queue(ctx.topology, ctx.config.queue_of(worker)) {
        why.push(format!(
            "The queue {} is not created by this stack: give it a visibility timeout of at least {} s ({VISIBILITY_FACTOR}x this timeout)",
            ctx.config.queue_of(worker),
            timeout.as_secs() * u64::from(VISIBILITY_FACTOR)
        ));
    }
    json!({
        "Type": "AWS::Lambda::Function",
        "Metadata": {
            "fleet": { "why": why },
            "checkov": { "skip": [
                {
                    "id": "CKV_AWS_116",
                    "comment": "An SQS event source: a failed record comes back from the queue, and the queue's dead-letter queue (or the adapter's own dead-letter send, with its reason) keeps what fails for good; a function dead-letter queue only serves asynchronous invocations"
                },
                {
                    "id": "CKV_AWS_117",
                    "comment": "The function calls only AWS APIs (and an SMTP server when so configured) over TLS; outside a VPC it needs no NAT gateway or endpoints, and it accepts no inbound traffic either way"
                },
                {
                    "id": "CKV_AWS_173",
                    "comment": "The environment holds no secret: the worker's name and the configuration path; secrets come from SSM at run time"
                },
                {
                    "id": "CKV_AWS_272",
                    "comment": "The code is the zip this repository builds (deploy/README.md: Lambda) from the operator's bucket; code signing is an account-level choice this template does not impose"
                }
            ] }
        },
        "Properties": {
            "Description": format!("fleet-lambda: the {worker} worker on its SQS queue (the handler fleet run runs)"),
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "Architectures": [{ "Ref": "LambdaArchitecture" }],
            "Code": { "S3Bucket": { "Ref": "CodeBucket" }, "S3Key": { "Ref": "CodeKey" } },
            "MemorySize": { "Ref": format!("{w}MemorySize") },
            "Timeout": timeout.as_secs(),
            "ReservedConcurrentExecutions": { "Fn::If": [
                format!("Has{w}ReservedConcurrency"),
                { "Ref": format!("{w}ReservedConcurrency") },
                { "Ref": "AWS::NoValue" }
            ] },
            "Role": { "Fn::GetAtt": [logical_id("Role", worker.as_str()), "Arn"] },
            "LoggingConfig": { "LogGroup": { "Ref": format!("LogGroup{w}") } },
            "Environment": { "Variables": {
                WORKER_VAR: worker.as_str(),
                "FLEET_CONFIG": CONFIG_IN_PACKAGE,
                "RUST_LOG": "info"
            } },
            "Tags": tags(worker)
                .into_iter()
                .map(|(k, v)| json!({ "Key": k, "Value": v }))
                .collect::<Vec<_>>()
        }
    })
}

/// The log group a worker's function writes to, for its role.
pub fn log_group_arn(worker: WorkerKind) -> Value {
    json!({ "Fn::GetAtt": [format!("LogGroup{}", title(worker)), "Arn"] })
}
