use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fleet_bus::topology::Topology;
use serde_json::Value;

use super::*;
use crate::run::Effective;

fn shipped() -> (Topology, FleetConfig) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let config = Effective::load(Some(&deploy.join("fleet.toml")), Vec::new())
        .expect("deploy/fleet.toml loads")
        .config;
    let topology = Topology::from_file(deploy.join("topology.toml")).expect("topology loads");
    (topology, config)
}

fn export(platform: Platform, config: &FleetConfig, topology: &Topology) -> Value {
    let ctx = ExportContext {
        topology,
        config,
        platform,
    };
    let mut t = Template::default();
    add(&mut t, &ctx);
    t.to_json()
}

fn resources<'v>(t: &'v Value, kind: &str) -> Vec<(&'v String, &'v Value)> {
    t["Resources"]
        .as_object()
        .map(|r| r.iter().filter(|(_, v)| v["Type"] == kind).collect())
        .unwrap_or_default()
}

#[test]
fn no_platform_adds_nothing() {
    let (topology, config) = shipped();
    let t = export(Platform::None, &config, &topology);
    assert!(t.get("Resources").is_none() && t.get("Parameters").is_none());
}

#[test]
fn each_worker_gets_a_fargate_service_tagged_for_cost_with_a_private_network() {
    let (topology, config) = shipped();
    let t = export(Platform::Ecs, &config, &topology);
    let services = resources(&t, "AWS::ECS::Service");
    assert_eq!(services.len(), 3);
    for w in ["Orders", "Analytics", "Email"] {
        let p = &t["Resources"][format!("Service{w}")]["Properties"];
        assert_eq!(p["PropagateTags"], "SERVICE");
        assert_eq!(p["Tags"][0]["Key"], "fleet:worker");
        assert_eq!(p["Tags"][0]["Value"], w.to_lowercase());
        assert_eq!(p["Tags"][1]["Key"], "fleet:service");
        assert_eq!(
            p["DeploymentConfiguration"]["DeploymentCircuitBreaker"]["Rollback"],
            true
        );
        let network = &p["NetworkConfiguration"]["AwsvpcConfiguration"];
        assert_eq!(network["AssignPublicIp"], "DISABLED");
        assert_eq!(network["Subnets"]["Ref"], "PrivateSubnets");
        assert!(
            p.get("DesiredCount").is_none(),
            "the scaling owns the count"
        );

        let td = &t["Resources"][format!("TaskDefinition{w}")]["Properties"];
        assert_eq!(td["TaskRoleArn"]["Fn::GetAtt"][0], format!("Role{w}"));
        assert_eq!(td["RequiresCompatibilities"][0], "FARGATE");
        let c = &td["ContainerDefinitions"][0];
        assert_eq!(c["Command"][2], w.to_lowercase());
        assert_eq!(c["ReadonlyRootFilesystem"], true);
        assert_eq!(c["PortMappings"][0]["ContainerPort"], 9464);
        assert_eq!(c["HealthCheck"]["Command"][2], "healthcheck");
    }
}

#[test]
fn the_stop_timeout_outlasts_the_worst_case_drain_within_fargates_limit() {
    let (topology, config) = shipped();
    assert_eq!(worst_case_drain(&config), Duration::from_secs(33));
    let t = export(Platform::Ecs, &config, &topology);
    let stop = t["Resources"]["TaskDefinitionOrders"]["Properties"]["ContainerDefinitions"][0]
        ["StopTimeout"]
        .as_u64()
        .expect("a stop timeout");
    assert_eq!(stop, 45, "the systemd unit's TimeoutStopSec too");
    assert!(Duration::from_secs(stop) > worst_case_drain(&config));
    assert!(Duration::from_secs(stop) <= FARGATE_MAX_STOP_TIMEOUT);
}

#[test]
fn a_drain_longer_than_fargate_allows_is_refused_on_ecs_only() {
    let (topology, mut config) = shipped();
    config.shutdown_timeout = Duration::from_secs(101);
    let ctx = |platform| ExportContext {
        topology: &topology,
        config: &config,
        platform,
    };
    assert_eq!(
        check(&ctx(Platform::Ecs)),
        Err(PlatformError::DrainTooLongForFargate {
            shutdown: Duration::from_secs(101),
            needed: Duration::from_secs(121),
            max_shutdown: Duration::from_secs(100),
        })
    );
    assert_eq!(check(&ctx(Platform::Ec2)), Ok(()));
    config.shutdown_timeout = Duration::from_secs(100);
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    assert_eq!(check(&ctx), Ok(()));
}

#[test]
fn ecs_scales_on_backlog_per_task_with_cooldowns_of_60_out_and_300_in() {
    let (topology, config) = shipped();
    let t = export(Platform::Ecs, &config, &topology);
    let target = &t["Resources"]["ScalableTargetOrders"]["Properties"];
    assert_eq!(target["ScalableDimension"], "ecs:service:DesiredCount");
    assert_eq!(target["MinCapacity"]["Ref"], "OrdersMinCapacity");
    let c = &t["Resources"]["ScalingPolicyOrders"]["Properties"]["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(c["ScaleOutCooldown"], 60);
    assert_eq!(c["ScaleInCooldown"], 300);
    assert_eq!(c["TargetValue"]["Ref"], "OrdersBacklogTarget");
    let m = &c["CustomizedMetricSpecification"]["Metrics"];
    let visible = &m[0]["MetricStat"]["Metric"];
    assert_eq!(visible["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(
        visible["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        "QueueFleetOrders"
    );
    assert_eq!(
        m[1]["MetricStat"]["Metric"]["MetricName"],
        "RunningTaskCount"
    );
    assert_eq!(
        m[1]["MetricStat"]["Metric"]["Namespace"],
        "ECS/ContainerInsights"
    );
    assert_eq!(
        m[2]["Expression"],
        "IF(FILL(m2, 0) > 0, m1 / FILL(m2, 0), m1)"
    );
    let returned: Vec<&Value> = m
        .as_array()
        .into_iter()
        .flatten()
        .filter(|q| q["ReturnData"] == true)
        .collect();
    assert_eq!(returned.len(), 1, "target tracking takes one time series");
}

#[test]
fn each_worker_has_its_four_alarms_notifying_the_optional_topic() {
    let (topology, config) = shipped();
    for platform in [Platform::Ecs, Platform::Ec2] {
        let t = export(platform, &config, &topology);
        assert_eq!(resources(&t, "AWS::CloudWatch::Alarm").len(), 12);
        let r = &t["Resources"];
        let dlq = &r["AlarmOrdersDeadLetters"]["Properties"];
        assert_eq!(
            dlq["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
            "QueueFleetOrdersDlq"
        );
        assert_eq!(dlq["AlarmActions"]["Fn::If"][0], "HasAlarmTopic");
        let oldest = &r["AlarmEmailOldestMessage"]["Properties"];
        assert_eq!(oldest["Threshold"]["Ref"], "OldestMessageTargetSeconds");
        assert_eq!(
            t["Parameters"]["OldestMessageTargetSeconds"]["Default"],
            "300"
        );
        let stalled = &r["AlarmAnalyticsNotConsuming"]["Properties"]["Metrics"];
        assert_eq!(
            stalled[1]["MetricStat"]["Metric"]["MetricName"],
            "NumberOfMessagesDeleted"
        );
        let below = &r["AlarmOrdersBelowDesired"]["Properties"]["Metrics"];
        let running = below[1]["MetricStat"]["Metric"]["MetricName"].clone();
        let expected = if platform == Platform::Ec2 {
            "GroupInServiceInstances"
        } else {
            "RunningTaskCount"
        };
        assert_eq!(running, expected);
    }
}

#[test]
fn ec2_groups_scale_on_backlog_per_instance_and_hold_terminations_for_the_drain() {
    let (topology, config) = shipped();
    let t = export(Platform::Ec2, &config, &topology);
    let g = &t["Resources"]["AutoScalingGroupOrders"]["Properties"];
    assert_eq!(g["MetricsCollection"][0]["Granularity"], "1Minute");
    let hook = &g["LifecycleHookSpecificationList"][0];
    assert_eq!(
        hook["LifecycleTransition"],
        "autoscaling:EC2_INSTANCE_TERMINATING"
    );
    assert_eq!(hook["LifecycleHookName"], ec2::LIFECYCLE_HOOK);
    let heartbeat = hook["HeartbeatTimeout"].as_u64().expect("a heartbeat");
    assert!(Duration::from_secs(heartbeat) > stop_timeout(&config));
    assert_eq!(g["Tags"][0]["PropagateAtLaunch"], true);
    let lt = &t["Resources"]["LaunchTemplateOrders"]["Properties"]["LaunchTemplateData"];
    assert_eq!(lt["MetadataOptions"]["HttpTokens"], "required");
    assert_eq!(lt["ImageId"]["Ref"], "ImageId");
    let lifecycle = &t["Resources"]["LifecyclePolicyOrders"]["Properties"];
    assert_eq!(lifecycle["Roles"][0]["Ref"], "RoleOrders");
    assert_eq!(
        lifecycle["PolicyDocument"]["Statement"][0]["Action"],
        "autoscaling:CompleteLifecycleAction",
        "only what deploy/ec2/fleet-drain.sh calls"
    );
    let profile = &t["Resources"]["InstanceProfileOrders"]["Properties"];
    assert_eq!(profile["Roles"][0]["Ref"], "RoleOrders");
    let policy =
        &t["Resources"]["ScalingPolicyOrders"]["Properties"]["TargetTrackingConfiguration"];
    let m = &policy["CustomizedMetricSpecification"]["Metrics"];
    assert_eq!(
        m[1]["MetricStat"]["Metric"]["MetricName"],
        "GroupInServiceInstances"
    );
    assert_eq!(
        m[2]["Expression"],
        "IF(FILL(m2, 0) > 0, m1 / FILL(m2, 0), m1)"
    );
    assert!(
        t["Parameters"]["ImageId"]["Type"]
            .as_str()
            .is_some_and(|s| s.starts_with("AWS::SSM::Parameter::Value"))
    );
}

/// Every `Ref`, `GetAtt` and `${...}` names a parameter, a pseudo parameter, a resource of the
/// template, or one the other pieces of the export add (queues and roles).
#[test]
fn every_reference_resolves_here_or_to_a_queue_or_role_of_the_export() {
    let (topology, config) = shipped();
    for platform in [Platform::Ecs, Platform::Ec2, Platform::Lambda] {
        let t = export(platform, &config, &topology);
        let mut names = BTreeSet::new();
        collect_references(&t["Resources"], &mut names);
        for name in names {
            let known = name.starts_with("AWS::")
                || t["Parameters"].get(&name).is_some()
                || t["Resources"].get(&name).is_some()
                || name.starts_with("Queue")
                || ["RoleOrders", "RoleAnalytics", "RoleEmail"].contains(&name.as_str());
            assert!(known, "{platform:?}: {name} is defined nowhere");
        }
    }
}

fn collect_references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("Ref", Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    ("Fn::GetAtt", Value::Array(a)) => {
                        if let Some(Value::String(s)) = a.first() {
                            out.insert(s.clone());
                        }
                    }
                    ("Fn::Sub", Value::String(s)) => {
                        for part in s.split("${").skip(1) {
                            if let Some(name) = part.split('}').next() {
                                out.insert(name.split('.').next().unwrap_or(name).to_owned());
                            }
                        }
                    }
                    _ => collect_references(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

#[test]
fn the_workers_reach_only_https_and_the_smtp_port_when_email_sends_by_smtp() {
    let (topology, mut config) = shipped();
    let egress = |config: &FleetConfig| {
        let t = export(Platform::Ecs, config, &topology);
        let rules = t["Resources"]["WorkerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            t["Resources"]["WorkerSecurityGroup"]["Properties"]
                .get("SecurityGroupIngress")
                .is_none()
        );
        rules
            .iter()
            .map(|r| r["FromPort"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(egress(&config), vec![serde_json::json!(443)]);
    config.email.mailer = crate::run::config::MailerKind::Smtp;
    assert_eq!(
        egress(&config),
        vec![serde_json::json!(443), serde_json::json!(587)]
    );
}

#[test]
fn a_disabled_worker_gets_nothing() {
    let (topology, mut config) = shipped();
    config.email.enabled = false;
    for platform in [Platform::Ecs, Platform::Ec2, Platform::Lambda] {
        let t = export(platform, &config, &topology);
        let names: Vec<&String> = t["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.keys())
            .chain(
                t["Parameters"]
                    .as_object()
                    .into_iter()
                    .flat_map(|p| p.keys()),
            )
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("Email")),
            "{platform:?}: {names:?}"
        );
        assert!(names.iter().any(|n| n.contains("Orders")));
    }
}

/// The whole export (queues and roles too), as `fleet topology export` writes it.
fn full_export(platform: Platform, config: &FleetConfig, topology: &Topology) -> Value {
    let ctx = ExportContext {
        topology,
        config,
        platform,
    };
    crate::deploy::cloudformation::template(&ctx).to_json()
}

#[test]
fn each_worker_gets_a_function_whose_mapping_reports_batch_item_failures() {
    let (topology, config) = shipped();
    let t = full_export(Platform::Lambda, &config, &topology);
    assert_eq!(resources(&t, "AWS::Lambda::Function").len(), 3);
    assert_eq!(resources(&t, "AWS::Lambda::EventSourceMapping").len(), 3);
    assert!(resources(&t, "AWS::ECS::Service").is_empty());
    assert!(t["Parameters"].get("VpcId").is_none(), "no VPC: {t}");
    for (w, queue) in [
        ("Orders", "QueueFleetOrders"),
        ("Analytics", "QueueFleetAnalytics"),
        ("Email", "QueueFleetEmail"),
    ] {
        let f = &t["Resources"][format!("Function{w}")]["Properties"];
        assert_eq!(f["Runtime"], "provided.al2023");
        assert_eq!(f["Handler"], "bootstrap");
        assert_eq!(f["Role"]["Fn::GetAtt"][0], format!("Role{w}"));
        assert_eq!(
            f["Environment"]["Variables"][lambda::WORKER_VAR],
            w.to_lowercase()
        );
        assert_eq!(
            f["Environment"]["Variables"]["FLEET_CONFIG"],
            lambda::CONFIG_IN_PACKAGE
        );
        // Reserved only when asked (small accounts cannot spare it).
        let reserved = &f["ReservedConcurrentExecutions"]["Fn::If"];
        assert_eq!(reserved[0], format!("Has{w}ReservedConcurrency"));
        assert_eq!(reserved[1]["Ref"], format!("{w}ReservedConcurrency"));
        assert_eq!(reserved[2]["Ref"], "AWS::NoValue");
        assert_eq!(
            t["Parameters"][format!("{w}ReservedConcurrency")]["Default"],
            "0"
        );
        assert!(
            f.get("FunctionName").is_none(),
            "named by CloudFormation: 64 characters at most"
        );
        assert_eq!(
            f["LoggingConfig"]["LogGroup"]["Ref"],
            format!("LogGroup{w}")
        );
        let m = &t["Resources"][format!("EventSourceMapping{w}")]["Properties"];
        assert_eq!(m["EventSourceArn"]["Fn::GetAtt"][0], queue);
        assert_eq!(m["FunctionName"]["Ref"], format!("Function{w}"));
        assert_eq!(
            m["FunctionResponseTypes"],
            serde_json::json!(["ReportBatchItemFailures"])
        );
        assert_eq!(m["BatchSize"]["Ref"], format!("{w}BatchSize"));
        assert_eq!(
            m["MaximumBatchingWindowInSeconds"]["Ref"],
            format!("{w}MaximumBatchingWindow")
        );
        // The cost cap: the most invocations the queue makes at once.
        assert_eq!(
            m["ScalingConfig"]["MaximumConcurrency"]["Ref"],
            format!("{w}MaximumConcurrency")
        );
        assert_eq!(
            t["Parameters"][format!("{w}MaximumConcurrency")]["MinValue"],
            2,
            "the mapping's bounds"
        );
        let batch = if w == "Email" { "1" } else { "10" };
        assert_eq!(t["Parameters"][format!("{w}BatchSize")]["Default"], batch);
    }
}

#[test]
fn the_timeout_fits_the_handler_and_the_queue_waits_six_times_it() {
    let (topology, mut config) = shipped();
    assert_eq!(
        lambda::function_timeout(&config, WorkerKind::Orders),
        Duration::from_secs(30)
    );
    assert_eq!(
        lambda::function_timeout(&config, WorkerKind::Analytics),
        Duration::from_secs(30)
    );
    // The shipped SES send_timeout (30 s) with the claim, the mark-as-sent and the publish
    // around it (10 s each) and the adapter's settling margin (2 s).
    assert_eq!(config.email.ses.send_timeout, Duration::from_secs(30));
    assert_eq!(
        lambda::function_timeout(&config, WorkerKind::Email),
        Duration::from_secs(62)
    );
    let t = full_export(Platform::Lambda, &config, &topology);
    for (w, queue, declared) in [
        ("Orders", "QueueFleetOrders", 30),
        ("Analytics", "QueueFleetAnalytics", 30),
        ("Email", "QueueFleetEmail", 60),
    ] {
        let timeout = t["Resources"][format!("Function{w}")]["Properties"]["Timeout"]
            .as_u64()
            .unwrap();
        let q = &t["Resources"][queue];
        let visibility = q["Properties"]["VisibilityTimeout"].as_u64().unwrap();
        assert_eq!(visibility, 6 * timeout, "{w}");
        assert!(visibility > declared, "{w}");
        let why = q["Metadata"]["fleet"]["why"][0].as_str().unwrap();
        assert!(why.contains("6x"), "{why}");
    }
    // ECS keeps the topology's visibility.
    let ecs = full_export(Platform::Ecs, &config, &topology);
    assert_eq!(
        ecs["Resources"]["QueueFleetOrders"]["Properties"]["VisibilityTimeout"],
        30
    );
    // A longer send needs a longer function, and the SMTP mailer's own send_timeout counts.
    config.email.mailer = crate::run::config::MailerKind::Smtp;
    config.email.smtp.send_timeout = Duration::from_secs(100);
    assert_eq!(
        lambda::function_timeout(&config, WorkerKind::Email),
        Duration::from_secs(132)
    );
    config.email.smtp.send_timeout = Duration::from_secs(5000);
    assert_eq!(
        lambda::function_timeout(&config, WorkerKind::Email),
        lambda::MAX_TIMEOUT
    );
}

#[test]
fn a_declared_visibility_longer_than_needed_is_kept() {
    let (mut topology, config) = shipped();
    for q in &mut topology.queues {
        q.visibility_timeout_seconds = 900;
    }
    let t = full_export(Platform::Lambda, &config, &topology);
    let q = &t["Resources"]["QueueFleetEmail"];
    assert_eq!(q["Properties"]["VisibilityTimeout"], 900);
    assert!(q.get("Metadata").is_none(), "{q}");
}

#[test]
fn a_fifo_source_gets_no_batching_window_and_a_queue_outside_the_stack_is_named_for_sizing() {
    let (topology, mut config) = shipped();
    config.orders.queue = "orders-elsewhere.fifo".into();
    let t = export(Platform::Lambda, &config, &topology);
    let m = &t["Resources"]["EventSourceMappingOrders"]["Properties"];
    assert!(m.get("MaximumBatchingWindowInSeconds").is_none(), "{m}");
    assert!(t["Parameters"].get("OrdersMaximumBatchingWindow").is_none());
    assert_eq!(t["Parameters"]["OrdersBatchSize"]["MaxValue"], 10);
    assert!(
        m["EventSourceArn"]["Fn::Sub"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(":orders-elsewhere.fifo"))
    );
    let why = t["Resources"]["FunctionOrders"]["Metadata"]["fleet"]["why"].to_string();
    assert!(
        why.contains("orders-elsewhere.fifo is not created by this stack")
            && why.contains("at least 180 s"),
        "{why}"
    );
}

#[test]
fn a_function_alarms_on_whole_invocation_failures_and_on_its_concurrency_cap() {
    let (topology, config) = shipped();
    let t = export(Platform::Lambda, &config, &topology);
    // Dead letters, oldest message, not consuming, and the two of a function.
    assert_eq!(resources(&t, "AWS::CloudWatch::Alarm").len(), 15);
    let r = &t["Resources"];
    assert!(r.get("AlarmOrdersBelowDesired").is_none());
    let errors = &r["AlarmOrdersFunctionErrors"]["Properties"];
    assert_eq!(errors["Namespace"], "AWS/Lambda");
    assert_eq!(errors["MetricName"], "Errors");
    assert_eq!(errors["Dimensions"][0]["Value"]["Ref"], "FunctionOrders");
    let cap = &r["AlarmEmailAtConcurrencyCap"]["Properties"];
    assert_eq!(cap["MetricName"], "ConcurrentExecutions");
    assert_eq!(cap["Threshold"]["Ref"], "EmailMaximumConcurrency");
    assert_eq!(cap["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
}
