//! EC2: per worker a launch template, an instance profile with the worker's role, an Auto
//! Scaling group with a termination lifecycle hook, and its scaling on backlog per instance.
//!
//! On each instance `deploy/ec2/fleet-drain.sh` watches the instance's target lifecycle state;
//! at `Terminated` it stops `fleet.service` (which drains) and then completes the hook, so
//! scale-in never kills a busy worker.

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    ExportContext, Template, backlog_per_capacity, ecs::security_group, queue_name, stop_timeout,
    tags, title,
};
use crate::run::WorkerKind;

/// The lifecycle hook's name, which `deploy/ec2/fleet-drain.sh` completes.
pub const LIFECYCLE_HOOK: &str = "fleet-drain";

/// What the hook's heartbeat keeps on top of the stop timeout: the drain script's 5 s poll of
/// the instance metadata, and its `complete-lifecycle-action` call with retries.
const HOOK_MARGIN: Duration = Duration::from_secs(120);

/// Seconds a new instance needs before its metrics count for scaling: boot, the bundle's
/// download, and the preflight.
const INSTANCE_WARMUP: u32 = 180;

/// How long the lifecycle hook holds a terminating instance at most: longer than the drain.
pub fn hook_heartbeat(config: &crate::run::FleetConfig) -> Duration {
    stop_timeout(config) + HOOK_MARGIN
}

pub(super) fn add(t: &mut Template, ctx: &ExportContext<'_>) {
    parameters(t);
    security_group(t, ctx);
    for worker in ctx.workers() {
        let w = title(worker);
        t.resource(
            format!("InstanceProfile{w}"),
            json!({
                "Type": "AWS::IAM::InstanceProfile",
                "Properties": { "Roles": [{ "Ref": format!("Role{w}") }] }
            }),
        );
        t.resource(format!("LifecyclePolicy{w}"), lifecycle_policy(worker));
        t.resource(format!("LaunchTemplate{w}"), launch_template(worker));
        t.resource(format!("AutoScalingGroup{w}"), group(ctx, worker));
        let queue = queue_name(ctx.topology, ctx.config.queue_of(worker));
        let in_service = json!({
            "Namespace": "AWS/AutoScaling",
            "MetricName": "GroupInServiceInstances",
            "Dimensions": [{ "Name": "AutoScalingGroupName", "Value": { "Ref": format!("AutoScalingGroup{w}") } }]
        });
        t.resource(format!("ScalingPolicy{w}"), json!({
            "Type": "AWS::AutoScaling::ScalingPolicy",
            "Properties": {
                "AutoScalingGroupName": { "Ref": format!("AutoScalingGroup{w}") },
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingConfiguration": {
                    "TargetValue": { "Ref": format!("{w}BacklogTarget") },
                    "CustomizedMetricSpecification": {
                        "Metrics": backlog_per_capacity(queue, in_service, "Backlog per instance")
                    }
                }
            }
        }));
    }
}

fn parameters(t: &mut Template) {
    t.parameters.insert("ImageId".into(), json!({
        "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "Description": "The AMI, through an SSM parameter (the public Amazon Linux 2023 one, or your own baked image's)"
    }));
    t.parameters.insert("FleetBundleUrl".into(), json!({
        "Type": "String",
        "Default": "",
        "AllowedPattern": "^(https://.*)?$",
        "Description": "An HTTPS URL of the fleet bundle (bin/fleet and deploy/, see deploy/README.md); empty when the AMI already holds /opt/fleet"
    }));
    t.parameters.insert(
        "FleetBundleSha256".into(),
        json!({
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([0-9a-f]{64})?$",
            "Description": "The bundle's SHA-256 (checked before it is unpacked)"
        }),
    );
}

/// The group's name, known before the group exists so the lifecycle policy does not depend on
/// it (the group depends on the policy: a stack deletion removes the group, and drains its
/// instances, while the policy still lets them complete the hook).
fn group_name(worker: WorkerKind) -> Value {
    json!({ "Fn::Sub": format!("${{AWS::StackName}}-{}", worker.as_str()) })
}

/// Lets the worker's instances complete their own group's lifecycle hook: the one
/// permission the drain script needs beyond the worker's role.
fn lifecycle_policy(worker: WorkerKind) -> Value {
    let w = title(worker);
    json!({
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "complete-the-drain-lifecycle-hook",
            "Roles": [{ "Ref": format!("Role{w}") }],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    // Only what fleet-drain.sh calls (it never extends the heartbeat).
                    "Action": "autoscaling:CompleteLifecycleAction",
                    // The group's id is a UUID chosen by AWS; its name is the stack's.
                    "Resource": { "Fn::Sub": format!(
                        "arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:autoScalingGroupName/${{AWS::StackName}}-{}",
                        worker.as_str()
                    ) }
                }]
            }
        }
    })
}

fn launch_template(worker: WorkerKind) -> Value {
    let w = title(worker);
    let tag_spec =
        |kind: &str| json!({ "ResourceType": kind, "Tags": super::ecs::tag_list(worker) });
    json!({
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {
            "LaunchTemplateData": {
                "ImageId": { "Ref": "ImageId" },
                "InstanceType": { "Ref": format!("{w}InstanceType") },
                "IamInstanceProfile": { "Arn": { "Fn::GetAtt": [format!("InstanceProfile{w}"), "Arn"] } },
                "SecurityGroupIds": [{ "Ref": "WorkerSecurityGroup" }],
                "MetadataOptions": {
                    "HttpEndpoint": "enabled",
                    "HttpTokens": "required",
                    "HttpPutResponseHopLimit": 1
                },
                "Monitoring": { "Enabled": true },
                "EbsOptimized": true,
                "BlockDeviceMappings": [{
                    "DeviceName": "/dev/xvda",
                    "Ebs": { "VolumeSize": 16, "VolumeType": "gp3", "Encrypted": true, "DeleteOnTermination": true }
                }],
                "TagSpecifications": [tag_spec("instance"), tag_spec("volume")],
                "UserData": { "Fn::Base64": { "Fn::Sub": user_data(worker) } }
            }
        }
    })
}

/// The instance's first boot: where it belongs, the bundle (checked), then the install script.
fn user_data(worker: WorkerKind) -> String {
    let name = worker.as_str();
    format!(
        r#"#!/bin/bash
# Fleet {name} instance: record where it belongs, unpack the bundle, install and start fleet.
set -euo pipefail
install -d -m 0755 /etc/fleet
cat > /etc/fleet/instance.env <<'ENV'
FLEET_WORKER={name}
FLEET_ASG=${{AWS::StackName}}-{name}
FLEET_LIFECYCLE_HOOK={LIFECYCLE_HOOK}
AWS_REGION=${{AWS::Region}}
ENV
if [ -n "${{FleetBundleUrl}}" ]; then
  curl --fail --silent --show-error --location --proto =https --output /tmp/fleet-bundle.tar.gz "${{FleetBundleUrl}}"
  echo "${{FleetBundleSha256}}  /tmp/fleet-bundle.tar.gz" | sha256sum --check --strict
  install -d -m 0755 /opt/fleet
  tar --extract --gzip --file /tmp/fleet-bundle.tar.gz --directory /opt/fleet
fi
/opt/fleet/deploy/ec2/install.sh
"#
    )
}

fn group(ctx: &ExportContext<'_>, worker: WorkerKind) -> Value {
    let w = title(worker);
    let group_tags: Vec<Value> = tags(worker)
        .into_iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v, "PropagateAtLaunch": true }))
        .collect();
    json!({
        "Type": "AWS::AutoScaling::AutoScalingGroup",
        "DependsOn": [format!("LifecyclePolicy{w}")],
        // A new launch template version (a new bundle, AMI or size) replaces the instances one
        // at a time; each termination goes through the drain hook. The group's own health and
        // scaling processes wait, so they do not fight the replacement.
        "UpdatePolicy": { "AutoScalingRollingUpdate": {
            "MaxBatchSize": 1,
            "MinInstancesInService": 0,
            "PauseTime": format!("PT{INSTANCE_WARMUP}S"),
            "SuspendProcesses": ["HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions"]
        } },
        "Properties": {
            "AutoScalingGroupName": group_name(worker),
            "LaunchTemplate": {
                "LaunchTemplateId": { "Ref": format!("LaunchTemplate{w}") },
                "Version": { "Fn::GetAtt": [format!("LaunchTemplate{w}"), "LatestVersionNumber"] }
            },
            "MinSize": { "Ref": format!("{w}MinCapacity") },
            "MaxSize": { "Ref": format!("{w}MaxCapacity") },
            "VPCZoneIdentifier": { "Ref": "PrivateSubnets" },
            "HealthCheckType": "EC2",
            "DefaultInstanceWarmup": INSTANCE_WARMUP,
            // Every group metric, each minute: GroupInServiceInstances feeds the scaling,
            // GroupDesiredCapacity the below-desired alarm.
            "MetricsCollection": [{ "Granularity": "1Minute" }],
            "LifecycleHookSpecificationList": [{
                "LifecycleHookName": LIFECYCLE_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": hook_heartbeat(ctx.config).as_secs(),
                // If the drain script never answers, the instance still terminates at the
                // heartbeat: the messages it held come back after their visibility timeout.
                "DefaultResult": "CONTINUE"
            }],
            "Tags": group_tags
        }
    })
}
