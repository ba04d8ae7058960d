//! A worker's permissions as CloudFormation: the `AWS::IAM::Role` with one inline policy.
//!
//! Permissions that share their resources and conditions share a statement, so the policy reads
//! as one statement per resource (queue, dead-letter queue, topic, table by key prefix, ...).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::declare::permissions;
use super::{Permission, Resource};
use crate::deploy::{ExportContext, Platform, queue_arn, ssm_path_arn, table_arn, topic_arn};
use crate::run::WorkerKind;

/// The `AWS::IAM::Role` resource of `worker` (logical id `Role<Worker>`): the ECS task role
/// (`ecs-tasks.amazonaws.com`, for [`Platform::Ecs`] and [`Platform::None`]), the EC2
/// instance role (`ec2.amazonaws.com`) or the Lambda execution role (`lambda.amazonaws.com`),
/// with exactly the permissions of [`permissions`]; on Lambda also writing to the function's
/// own log group (Lambda's runtime writes it with the role's credentials).
pub fn role(worker: WorkerKind, ctx: &ExportContext<'_>) -> Value {
    let mut policies = vec![json!({
        "PolicyName": format!("fleet-{worker}"),
        "PolicyDocument": policy_document(worker, ctx),
    })];
    if ctx.platform == Platform::Lambda {
        policies.push(json!({
            "PolicyName": "write-its-logs",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "WriteTheFunctionsLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": crate::deploy::platform::lambda::log_group_arn(worker)
                }]
            },
        }));
    }
    json!({
        "Type": "AWS::IAM::Role",
        "Metadata": { "fleet": { "why": notes(worker, ctx) } },
        "Properties": {
            "Description": format!(
                "fleet run --worker {worker}: the AWS operations its code issues, on this stack's resources"
            ),
            "AssumeRolePolicyDocument": trust(ctx.platform),
            "Policies": policies,
            "Tags": [
                { "Key": "fleet:worker", "Value": worker.as_str() },
            ],
        },
    })
}

/// Why the policy looks as it does where a reader might doubt it: each wildcard justified.
fn notes(worker: WorkerKind, ctx: &ExportContext<'_>) -> Vec<String> {
    let granted = permissions(worker, ctx);
    let has = |r: fn(&Resource) -> bool| granted.iter().any(|p| r(&p.resource));
    let mut notes = vec![
        "Derived from the operations the worker's code issues (workers/src/deploy/iam/declare.rs); workers/tests/iam_roles.rs checks it against a real run both ways.".to_owned(),
        "No sts:GetCallerIdentity: the SNS transport asks it once to build topic ARNs, and AWS answers it without any permission.".to_owned(),
    ];
    if has(|r| matches!(r, Resource::Any)) {
        notes.push("Resource * only for ses:GetAccount (the send quota read at startup), which supports no resource-level permission.".to_owned());
    }
    if has(|r| matches!(r, Resource::KmsViaSsm(_))) {
        notes.push("kms:Decrypt on the account's keys only through SSM (kms:ViaService) and only for this worker's parameters (the PARAMETER_ARN encryption context): the SecureString's key is the operator's choice.".to_owned());
    }
    notes
}

/// Who may assume the role. ECS tasks only from this account's ECS (the confused-deputy
/// guard AWS recommends for task roles); EC2 instances through their instance profile.
fn trust(platform: Platform) -> Value {
    let statement = match platform {
        Platform::Ec2 => json!({
            "Effect": "Allow",
            "Principal": { "Service": "ec2.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }),
        // AWS's own Lambda execution roles trust the service without a source condition (the
        // function, in this account, is what assumes it).
        Platform::Lambda => json!({
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }),
        Platform::Ecs | Platform::None => json!({
            "Effect": "Allow",
            "Principal": { "Service": "ecs-tasks.amazonaws.com" },
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnLike": { "aws:SourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"
                } },
                "StringEquals": { "aws:SourceAccount": { "Ref": "AWS::AccountId" } },
            },
        }),
    };
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// A statement's template condition, resources and condition (as JSON text, for the order).
type GroupKey = (Option<&'static str>, String, String);
/// A statement's resources, condition and actions.
type Group = (Value, Value, BTreeSet<String>);

/// The inline policy of `worker`: one statement per set of resources and conditions. A
/// statement under a template condition (the queue key's) is an `Fn::If` that leaves it out.
pub fn policy_document(worker: WorkerKind, ctx: &ExportContext<'_>) -> Value {
    // Keyed by their JSON text, so the statements come out in one order on every export.
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for p in permissions(worker, ctx) {
        let resources = arns(&p.resource, ctx);
        let condition = condition(&p);
        let key = (p.when, resources.to_string(), condition.to_string());
        groups
            .entry(key)
            .or_insert_with(|| (resources, condition, BTreeSet::new()))
            .2
            .insert(p.action);
    }
    let statements: Vec<Value> = groups
        .into_iter()
        .map(|((when, _, _), (resources, condition, actions))| {
            let mut s = json!({
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resources,
            });
            if condition != Value::Null {
                s["Condition"] = condition;
            }
            match when {
                Some(c) => json!({ "Fn::If": [c, s, { "Ref": "AWS::NoValue" }] }),
                None => s,
            }
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The ARNs a resource names, from the stack's own resources where it declares them.
fn arns(resource: &Resource, ctx: &ExportContext<'_>) -> Value {
    let sub = |s: String| json!({ "Fn::Sub": s });
    let ses = |tail: &str| {
        sub(format!(
            "arn:${{AWS::Partition}}:ses:${{AWS::Region}}:${{AWS::AccountId}}:{tail}"
        ))
    };
    match resource {
        Resource::Queue(n) => json!([queue_arn(ctx.topology, n)]),
        Resource::Topic(n) => json!([topic_arn(ctx.topology, n)]),
        Resource::Table(n) => json!([table_arn(ctx.topology, n, None)]),
        Resource::Index { table, index } => json!([table_arn(ctx.topology, table, Some(index))]),
        Resource::Parameters(path) => json!([ssm_path_arn(path)]),
        Resource::SesIdentity(address) => {
            let domain = address.rsplit_once('@').map_or(address.as_str(), |d| d.1);
            json!([
                ses(&format!("identity/{address}")),
                ses(&format!("identity/{domain}"))
            ])
        }
        Resource::SesConfigurationSet(n) => json!([ses(&format!("configuration-set/{n}"))]),
        // The parameter's key is the operator's choice (aws/ssm or their own): any key of the
        // account, held to SSM and to this worker's parameters by the conditions.
        Resource::KmsViaSsm(_) => json!([sub(
            "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*".to_owned()
        )]),
        Resource::KmsViaSqs => json!([{ "Fn::GetAtt": ["QueueKey", "Arn"] }]),
        // `Ref` of the stack's `AWS::ECS::Cluster` is its name.
        Resource::EcsTasks => json!([sub(
            "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*"
                .to_owned()
        )]),
        // ses:GetAccount supports no resource-level permission.
        Resource::Any => json!("*"),
    }
}

/// The statement's condition: the items' partition-key prefixes, or the one service a KMS key
/// is used through (with SSM, only to decrypt this worker's parameters).
fn condition(p: &Permission) -> Value {
    let via =
        |service: &str| json!({ "Fn::Sub": format!("{service}.${{AWS::Region}}.amazonaws.com") });
    match (&p.resource, &p.leading_keys) {
        (_, Some(keys)) => json!({ "ForAllValues:StringLike": { "dynamodb:LeadingKeys": keys } }),
        (Resource::KmsViaSsm(path), None) => {
            let parameters = ssm_path_arn(path);
            json!({
                "StringEquals": { "kms:ViaService": via("ssm") },
                "StringLike": { "kms:EncryptionContext:PARAMETER_ARN": parameters },
            })
        }
        (Resource::KmsViaSqs, None) => json!({ "StringEquals": { "kms:ViaService": via("sqs") } }),
        _ => Value::Null,
    }
}
