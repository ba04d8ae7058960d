//! ECS Fargate: a cluster, and per worker a log group, a task definition, a service and its
//! scaling on backlog per task.

use serde_json::{Value, json};

use super::{
    ExportContext, FARGATE_MAX_STOP_TIMEOUT, Template, backlog_per_capacity, log_group, queue_name,
    stop_timeout, tags, title,
};
use crate::run::WorkerKind;

/// The container's name in every task definition.
const CONTAINER: &str = "fleet";

/// Where the image keeps the binary (deploy/docker/Dockerfile).
const BINARY: &str = "/usr/local/bin/fleet";

/// Seconds between scale-outs: a new task is receiving within a minute, so a backlog that still
/// grows after that needs more.
pub(super) const SCALE_OUT_COOLDOWN: u32 = 60;

/// Seconds between scale-ins: slower than out, so a lull between bursts does not stop tasks that
/// the next burst needs (and every stop is a drain).
pub(super) const SCALE_IN_COOLDOWN: u32 = 300;

pub(super) fn add(t: &mut Template, ctx: &ExportContext<'_>) {
    t.resource(
        "Cluster",
        json!({
            "Type": "AWS::ECS::Cluster",
            "Properties": {
                "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }],
                "Tags": [{ "Key": "fleet:stack", "Value": { "Ref": "AWS::StackName" } }]
            }
        }),
    );
    security_group(t, ctx);
    execution_role(t, ctx);
    for worker in ctx.workers() {
        let w = title(worker);
        log_group(t, worker);
        t.resource(format!("TaskDefinition{w}"), task_definition(ctx, worker));
        t.resource(format!("Service{w}"), service(worker));
        scaling(t, ctx, worker);
    }
}

/// The workers' security group: no inbound rule (the container health check runs inside the
/// task), outbound HTTPS to the AWS APIs, and the SMTP port when the email worker sends by SMTP.
pub(super) fn security_group(t: &mut Template, ctx: &ExportContext<'_>) {
    let mut egress = vec![json!({
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0",
        "Description": "AWS APIs (SQS, SNS, DynamoDB, SSM, SES, ECR, CloudWatch Logs) through the NAT gateway or VPC endpoints"
    })];
    if ctx.workers().contains(&WorkerKind::Email)
        && ctx.config.email.mailer == crate::run::config::MailerKind::Smtp
    {
        let port = ctx.config.email.smtp.effective_port();
        egress.push(json!({
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": "0.0.0.0/0",
            "Description": "The email worker's SMTP server"
        }));
    }
    t.resource(
        "WorkerSecurityGroup",
        json!({
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "Fleet workers: no inbound traffic; outbound to the AWS APIs",
                "VpcId": { "Ref": "VpcId" },
                "SecurityGroupEgress": egress
            }
        }),
    );
}

/// The role ECS uses to pull the image and write the logs (not the workers' own role).
fn execution_role(t: &mut Template, ctx: &ExportContext<'_>) {
    let log_groups: Vec<Value> = ctx
        .workers()
        .into_iter()
        .map(|w| json!({ "Fn::GetAtt": [format!("LogGroup{}", title(w)), "Arn"] }))
        .collect();
    t.resource("TaskExecutionRole", json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "ECS pulls the fleet image and writes the workers' logs",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Service": "ecs-tasks.amazonaws.com" },
                    // The trust of AWS's own ecsTaskExecutionRole: a source-key condition it
                    // does not document for this role would stop every task from starting.
                    "Action": "sts:AssumeRole"
                }]
            },
            "Policies": [{
                "PolicyName": "pull-image-and-write-logs",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            // ecr:GetAuthorizationToken has no resource-level permissions: AWS
                            // accepts only "*" for it (the token alone grants nothing; the pull
                            // below is scoped to the one repository).
                            "Sid": "EcrTokenAcceptsOnlyStar",
                            "Effect": "Allow",
                            "Action": "ecr:GetAuthorizationToken",
                            "Resource": "*"
                        },
                        {
                            "Sid": "PullTheFleetImage",
                            "Effect": "Allow",
                            "Action": [
                                "ecr:BatchCheckLayerAvailability",
                                "ecr:BatchGetImage",
                                "ecr:GetDownloadUrlForLayer"
                            ],
                            "Resource": { "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ImageRepository}" }
                        },
                        {
                            "Sid": "WriteTheWorkersLogs",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": log_groups
                        }
                    ]
                }
            }]
        }
    }));
}

fn task_definition(ctx: &ExportContext<'_>, worker: WorkerKind) -> Value {
    let w = title(worker);
    let stop = stop_timeout(ctx.config).min(FARGATE_MAX_STOP_TIMEOUT);
    let mut container = json!({
        "Name": CONTAINER,
        "Image": { "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${ImageRepository}:${ImageTag}" },
        "Command": ["run", "--worker", worker.as_str()],
        "Essential": true,
        "ReadonlyRootFilesystem": true,
        "StopTimeout": stop.as_secs(),
        "Environment": [{ "Name": "AWS_REGION", "Value": { "Ref": "AWS::Region" } }],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": { "Ref": format!("LogGroup{w}") },
                "awslogs-region": { "Ref": "AWS::Region" },
                "awslogs-stream-prefix": CONTAINER,
                // A slow log API must never block the worker's stdout (and so its handlers).
                "mode": "non-blocking",
                "max-buffer-size": "4m"
            }
        }
    });
    if let Some(listen) = ctx.config.observability.listen {
        container["PortMappings"] = json!([{
            "Name": "metrics", "ContainerPort": listen.port(), "Protocol": "tcp"
        }]);
        container["HealthCheck"] = json!({
            "Command": ["CMD", BINARY, "healthcheck", "--url", format!("http://127.0.0.1:{}/healthz", listen.port())],
            "Interval": 15,
            "Timeout": 5,
            "Retries": 3,
            // The preflight checks every resource before /healthz reports a running engine.
            "StartPeriod": 60
        });
    }
    json!({
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": { "Fn::Sub": format!("${{AWS::StackName}}-{}", worker.as_str()) },
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": { "Ref": format!("{w}Cpu") },
            "Memory": { "Ref": format!("{w}Memory") },
            "RuntimePlatform": {
                "OperatingSystemFamily": "LINUX",
                "CpuArchitecture": { "Ref": "CpuArchitecture" }
            },
            "ExecutionRoleArn": { "Fn::GetAtt": ["TaskExecutionRole", "Arn"] },
            "TaskRoleArn": { "Fn::GetAtt": [format!("Role{w}"), "Arn"] },
            "ContainerDefinitions": [container],
            "Tags": tag_list(worker)
        }
    })
}

fn service(worker: WorkerKind) -> Value {
    let w = title(worker);
    json!({
        "Type": "AWS::ECS::Service",
        "Properties": {
            "ServiceName": { "Fn::Sub": format!("${{AWS::StackName}}-{}", worker.as_str()) },
            "Cluster": { "Ref": "Cluster" },
            "TaskDefinition": { "Ref": format!("TaskDefinition{w}") },
            "LaunchType": "FARGATE",
            // No DesiredCount: the scaling owns it, and a stack update must not reset it.
            "DeploymentConfiguration": {
                "DeploymentCircuitBreaker": { "Enable": true, "Rollback": true },
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200
            },
            "NetworkConfiguration": { "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": { "Ref": "PrivateSubnets" },
                "SecurityGroups": [{ "Ref": "WorkerSecurityGroup" }]
            } },
            "EnableECSManagedTags": true,
            "PropagateTags": "SERVICE",
            "Tags": tag_list(worker)
        }
    })
}

fn scaling(t: &mut Template, ctx: &ExportContext<'_>, worker: WorkerKind) {
    let w = title(worker);
    t.resource(
        format!("ScalableTarget{w}"),
        json!({
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": { "Fn::Sub": format!("service/${{Cluster}}/${{Service{w}.Name}}") },
                "MinCapacity": { "Ref": format!("{w}MinCapacity") },
                "MaxCapacity": { "Ref": format!("{w}MaxCapacity") }
            }
        }),
    );
    let queue = queue_name(ctx.topology, ctx.config.queue_of(worker));
    let running = json!({
        "Namespace": "ECS/ContainerInsights",
        "MetricName": "RunningTaskCount",
        "Dimensions": [
            { "Name": "ClusterName", "Value": { "Ref": "Cluster" } },
            { "Name": "ServiceName", "Value": { "Fn::GetAtt": [format!("Service{w}"), "Name"] } }
        ]
    });
    t.resource(format!("ScalingPolicy{w}"), json!({
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": { "Fn::Sub": format!("${{AWS::StackName}}-{}-backlog-per-task", worker.as_str()) },
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": { "Ref": format!("ScalableTarget{w}") },
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": { "Ref": format!("{w}BacklogTarget") },
                "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
                "ScaleInCooldown": SCALE_IN_COOLDOWN,
                "CustomizedMetricSpecification": {
                    "Metrics": backlog_per_capacity(queue, running, "Backlog per task")
                }
            }
        }
    }));
}

/// Tags as ECS and most resources take them.
pub(super) fn tag_list(worker: WorkerKind) -> Value {
    tags(worker)
        .into_iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect()
}
