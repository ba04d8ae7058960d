use super::*;
use crate::deploy::{ExportContext, Platform};
use crate::iam_actions::IssuedAction;
use crate::run::{Effective, FleetConfig, WorkerKind};
use fleet_bus::topology::Topology;
use serde_json::Value;

fn deploy_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn shipped() -> (Topology, FleetConfig) {
    let topology =
        Topology::from_toml(&std::fs::read_to_string(deploy_dir().join("topology.toml")).unwrap())
            .unwrap();
    let config = Effective::load(Some(&deploy_dir().join("fleet.toml")), std::iter::empty())
        .unwrap()
        .config;
    (topology, config)
}

fn listed(worker: WorkerKind, topology: &Topology, config: &FleetConfig) -> Vec<String> {
    let ctx = ExportContext {
        topology,
        config,
        platform: Platform::None,
    };
    permissions(worker, &ctx)
        .iter()
        .map(ToString::to_string)
        .collect()
}

const ENGINE: [&str; 10] = [
    "kms:Decrypt kms-via-sqs:QueueKey when=UseKms",
    "kms:GenerateDataKey kms-via-sqs:QueueKey when=UseKms",
    "sqs:ChangeMessageVisibility queue:Q",
    "sqs:DeleteMessage queue:Q",
    "sqs:GetQueueAttributes queue:Q",
    "sqs:GetQueueAttributes queue:Q-dlq",
    "sqs:GetQueueUrl queue:Q",
    "sqs:GetQueueUrl queue:Q-dlq",
    "sqs:ReceiveMessage queue:Q",
    "sqs:SendMessage queue:Q-dlq",
];

fn expected(queue: &str, own: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = ENGINE
        .iter()
        .map(|e| e.replace("queue:Q", &format!("queue:{queue}")))
        .chain(own.iter().map(|s| (*s).to_owned()))
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_orders_worker_reads_its_orders_by_index_and_writes_only_its_key_prefixes() {
    let (topology, config) = shipped();
    assert_eq!(
        sorted(listed(WorkerKind::Orders, &topology, &config)),
        expected(
            "fleet-orders",
            &[
                "dynamodb:BatchWriteItem table:fleet leading-keys=USER#*",
                "dynamodb:DescribeTable table:fleet",
                "dynamodb:PutItem table:fleet leading-keys=ORDER#*,USER#*",
                "dynamodb:Query index:fleet/GSI1 leading-keys=ORDER#*",
                "dynamodb:Query table:fleet leading-keys=USER#*",
                "sns:GetTopicAttributes topic:fleet-events",
                "sns:Publish topic:fleet-events",
            ]
        )
    );
}

#[test]
fn the_analytics_worker_puts_its_events_and_updates_its_counters() {
    let (topology, mut config) = shipped();
    config.analytics.table = Some("counters".into());
    assert_eq!(
        sorted(listed(WorkerKind::Analytics, &topology, &config)),
        expected(
            "fleet-analytics",
            &[
                "dynamodb:DescribeTable table:counters",
                "dynamodb:PutItem table:counters leading-keys=EVENT#*",
                "dynamodb:UpdateItem table:counters leading-keys=COUNTER#*",
            ]
        )
    );
}

#[test]
fn the_email_worker_needs_what_its_mailer_needs() {
    let (topology, mut config) = shipped();
    let claims = [
        "dynamodb:DeleteItem table:fleet leading-keys=IDEMPOTENCY#email#*",
        "dynamodb:DescribeTable table:fleet",
        "dynamodb:PutItem table:fleet leading-keys=IDEMPOTENCY#email#*",
        "dynamodb:UpdateItem table:fleet leading-keys=IDEMPOTENCY#email#*",
        "sns:GetTopicAttributes topic:fleet-events",
        "sns:Publish topic:fleet-events",
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        let own: Vec<&str> = claims.iter().chain(extra).copied().collect();
        expected("fleet-email", &own)
    };
    config.email.ses.configuration_set = Some("fleet-transactional".into());
    assert_eq!(
        sorted(listed(WorkerKind::Email, &topology, &config)),
        with(&[
            "ses:GetAccount *",
            "ses:SendEmail configuration-set:fleet-transactional",
            "ses:SendEmail identity:no-reply@example.com",
        ])
    );
    config.email.mailer = crate::run::config::MailerKind::Smtp;
    config.email.smtp.password_parameter = Some("/fleet/email/smtp-password".into());
    assert_eq!(
        sorted(listed(WorkerKind::Email, &topology, &config)),
        with(&[
            "kms:Decrypt kms-via-ssm:/fleet/email",
            "ssm:GetParameter parameter:/fleet/email",
        ])
    );
    config.email.mailer = crate::run::config::MailerKind::Memory;
    assert_eq!(
        sorted(listed(WorkerKind::Email, &topology, &config)),
        with(&[])
    );
}

fn statements(doc: &Value) -> Vec<Value> {
    doc["Statement"].as_array().unwrap().clone()
}

#[test]
fn a_role_grants_no_wildcard_action_and_a_wildcard_resource_only_to_ses_get_account() {
    let (topology, mut config) = shipped();
    config.email.mailer = crate::run::config::MailerKind::Ses;
    for platform in [
        Platform::None,
        Platform::Ecs,
        Platform::Ec2,
        Platform::Lambda,
    ] {
        let ctx = ExportContext {
            topology: &topology,
            config: &config,
            platform,
        };
        for worker in WorkerKind::ALL {
            let role = role(worker, &ctx);
            assert_eq!(role["Type"], "AWS::IAM::Role");
            let doc = &role["Properties"]["Policies"][0]["PolicyDocument"];
            for s in statements(doc) {
                let s = s.get("Fn::If").map_or(s.clone(), |f| f[1].clone());
                let actions: Vec<&str> = s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
                if s["Resource"] == "*" {
                    assert_eq!(actions, ["ses:GetAccount"], "{worker}");
                }
                if actions
                    .iter()
                    .any(|a| a.starts_with("dynamodb:") && a.ends_with("Item"))
                    || actions == ["dynamodb:Query"]
                {
                    let keys = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                    assert!(keys.is_array(), "{worker}: {s}");
                }
                if actions.iter().any(|a| a.starts_with("kms:")) {
                    assert!(
                        s["Condition"]["StringEquals"]["kms:ViaService"].is_object(),
                        "{s}"
                    );
                }
            }
            let principal = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
                ["Service"];
            let expected = match platform {
                Platform::Ec2 => "ec2.amazonaws.com",
                Platform::Ecs | Platform::None => "ecs-tasks.amazonaws.com",
                Platform::Lambda => "lambda.amazonaws.com",
            };
            assert_eq!(principal, expected);
            let policies = role["Properties"]["Policies"].as_array().unwrap();
            if platform == Platform::Lambda {
                // The derived policy, and writing to the function's own log group only.
                assert_eq!(policies.len(), 2, "{worker}");
                let logs = &policies[1]["PolicyDocument"]["Statement"][0];
                assert_eq!(
                    logs["Action"],
                    serde_json::json!(["logs:CreateLogStream", "logs:PutLogEvents"])
                );
                assert_eq!(
                    logs["Resource"]["Fn::GetAtt"][0],
                    format!("LogGroup{}", crate::deploy::logical_id("", worker.as_str()))
                );
            } else {
                assert_eq!(policies.len(), 1, "{worker}");
            }
        }
    }
}

#[test]
fn resources_are_the_stacks_own_and_the_queue_key_is_conditional() {
    let (topology, config) = shipped();
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let doc = policy_document(WorkerKind::Orders, &ctx);
    let text = doc.to_string();
    for id in [
        "QueueFleetOrders",
        "QueueFleetOrdersDlq",
        "TopicFleetEvents",
        "TableFleet",
    ] {
        assert!(text.contains(&format!("\"{id}\"")), "{id} in {text}");
    }
    assert!(text.contains("${TableFleet.Arn}/index/GSI1"), "{text}");
    let conditional: Vec<Value> = statements(&doc)
        .into_iter()
        .filter_map(|s| s.get("Fn::If").cloned())
        .collect();
    assert_eq!(conditional.len(), 1, "{conditional:?}");
    assert_eq!(conditional[0][0], USE_KMS);
    assert_eq!(
        conditional[0][1]["Resource"][0]["Fn::GetAtt"],
        serde_json::json!(["QueueKey", "Arn"])
    );
    assert_eq!(
        conditional[0][1]["Action"],
        serde_json::json!(["kms:Decrypt", "kms:GenerateDataKey"])
    );
}

#[test]
fn the_smtp_password_is_read_only_under_the_workers_path_and_decrypted_only_through_ssm() {
    let (topology, mut config) = shipped();
    config.email.mailer = crate::run::config::MailerKind::Smtp;
    config.email.smtp.password_parameter = Some("/fleet/email/smtp-password".into());
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let doc = policy_document(WorkerKind::Email, &ctx);
    let ssm = statements(&doc)
        .into_iter()
        .find(|s| s["Action"] == serde_json::json!(["ssm:GetParameter"]))
        .unwrap();
    assert_eq!(
        ssm["Resource"][0]["Fn::Sub"],
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/fleet/email/*"
    );
    let kms = statements(&doc)
        .into_iter()
        .find(|s| s["Action"] == serde_json::json!(["kms:Decrypt"]))
        .unwrap();
    assert_eq!(
        kms["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"],
        "ssm.${AWS::Region}.amazonaws.com"
    );
    assert_eq!(
        kms["Condition"]["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"]["Fn::Sub"],
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/fleet/email/*"
    );
}

#[test]
fn resources_print_and_read_back_and_a_path_covers_its_parameters() {
    for r in [
        Resource::Queue("q".into()),
        Resource::Topic("t".into()),
        Resource::Table("fleet".into()),
        Resource::Index {
            table: "fleet".into(),
            index: "GSI1".into(),
        },
        Resource::Parameters("/fleet/email/x".into()),
        Resource::SesIdentity("a@example.com".into()),
        Resource::SesConfigurationSet("c".into()),
        Resource::KmsViaSsm("/fleet/email/x".into()),
        Resource::KmsViaSqs,
        Resource::Any,
    ] {
        assert_eq!(r.to_string().parse::<Resource>().unwrap(), r);
    }
    let path = Resource::Parameters("/fleet/email".into());
    assert!(path.covers(&Resource::Parameters("/fleet/email/p/smtp".into())));
    assert!(!path.covers(&Resource::Parameters("/fleet/emailer/x".into())));
    assert!(!path.covers(&Resource::Parameters("/fleet/orders/x".into())));
}

fn issued(line: &str) -> IssuedAction {
    line.parse().unwrap()
}

#[test]
fn the_comparison_finds_what_is_missing_and_what_is_extra() {
    let granted = vec![
        Permission::new("sqs:ReceiveMessage", Resource::Queue("q".into())),
        Permission::new("dynamodb:PutItem", Resource::Table("t".into()))
            .leading_keys(&["USER#*".into(), "ORDER#*".into()]),
        Permission::new("kms:Decrypt", Resource::KmsViaSqs).when(USE_KMS),
        Permission::new(
            "ssm:GetParameter",
            Resource::Parameters("/fleet/email".into()),
        ),
    ];
    let exact = [
        issued("sqs:ReceiveMessage queue:q"),
        issued("dynamodb:PutItem table:t leading-keys=ORDER#*,USER#*"),
        issued("ssm:GetParameter parameter:/fleet/email/a/b"),
    ];
    assert!(compare(&granted, &exact).is_empty());
    let diff = compare(
        &granted,
        &[
            issued("sqs:ReceiveMessage queue:q"),
            issued("sqs:SendMessage queue:q"),
            issued("dynamodb:PutItem table:t leading-keys=USER#*,EVENT#*"),
        ],
    );
    assert_eq!(diff.missing.len(), 2, "{diff}");
    assert!(diff.missing[0].starts_with("sqs:SendMessage"), "{diff}");
    assert!(diff.missing[1].contains("EVENT#*"), "{diff}");
    assert_eq!(diff.extra.len(), 2, "{diff}");
    assert!(diff.extra[0].contains("ORDER#*"), "{diff}");
    assert!(diff.extra[1].starts_with("ssm:GetParameter"), "{diff}");
}

#[test]
fn key_values_are_named_by_their_kind() {
    for (value, pattern) in [
        ("USER#c-1", "USER#*"),
        ("ORDER#o#1", "ORDER#*"),
        ("IDEMPOTENCY#email#e-1", "IDEMPOTENCY#email#*"),
        ("IDEMPOTENCY#orders#e-1", "IDEMPOTENCY#*"),
        ("COUNTER#event#x#day#2026", "COUNTER#*"),
        ("EVENT#e-1", "EVENT#*"),
        ("OTHER#x#y", "OTHER#*"),
        ("plain", "plain"),
    ] {
        assert_eq!(leading_key_pattern(value), pattern);
    }
}

#[test]
fn an_smtp_password_outside_the_workers_path_is_refused() {
    let (topology, mut config) = shipped();
    config.email.mailer = crate::run::config::MailerKind::Smtp;
    config.email.smtp.password_parameter = Some("/fleet/email/smtp-password".into());
    fn ctx<'a>(topology: &'a Topology, config: &'a FleetConfig) -> ExportContext<'a> {
        ExportContext {
            topology,
            config,
            platform: Platform::Ecs,
        }
    }
    assert_eq!(check(&ctx(&topology, &config)), Ok(()));
    config.email.smtp.password_parameter = Some("/prod/smtp-password".into());
    let err = check(&ctx(&topology, &config)).unwrap_err();
    assert!(err.contains("outside /fleet/email/"), "{err}");
    config.email.enabled = false;
    assert_eq!(check(&ctx(&topology, &config)), Ok(()));
}

#[test]
fn a_role_says_why_each_wildcard_is_there() {
    let (topology, config) = shipped();
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let why = role(WorkerKind::Email, &ctx)["Metadata"]["fleet"]["why"].to_string();
    assert!(
        why.contains("ses:GetAccount") && why.contains("sts:GetCallerIdentity"),
        "{why}"
    );
    let why = role(WorkerKind::Orders, &ctx)["Metadata"]["fleet"]["why"].to_string();
    assert!(!why.contains("ses:GetAccount"), "{why}");
}

/// Review finding: the ECS agent calls `UpdateTaskProtection` with the task role's credentials,
/// so on ECS (protection on, the default) every worker's role must allow it on the stack
/// cluster's tasks, and nowhere else.
#[test]
fn on_ecs_each_role_may_update_the_protection_of_its_clusters_tasks_only() {
    let (topology, mut config) = shipped();
    for platform in [
        Platform::None,
        Platform::Ecs,
        Platform::Ec2,
        Platform::Lambda,
    ] {
        let ctx = ExportContext {
            topology: &topology,
            config: &config,
            platform,
        };
        for worker in WorkerKind::ALL {
            let granted = permissions(worker, &ctx)
                .iter()
                .any(|p| p.to_string() == "ecs:UpdateTaskProtection ecs-tasks:Cluster");
            assert_eq!(
                granted,
                platform == Platform::Ecs,
                "{worker} on {platform:?}"
            );
        }
    }
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let doc = policy_document(WorkerKind::Orders, &ctx);
    let statement = statements(&doc)
        .into_iter()
        .find(|s| s["Action"] == serde_json::json!(["ecs:UpdateTaskProtection"]))
        .expect("a statement for task protection");
    assert_eq!(
        statement["Resource"],
        serde_json::json!([{ "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*" }])
    );
    config.ecs.task_protection = false;
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    assert!(
        !permissions(WorkerKind::Orders, &ctx)
            .iter()
            .any(|p| p.action == "ecs:UpdateTaskProtection"),
        "protection off: no grant"
    );
}

/// Review finding: a worker's queue under its own `kms_key` would get a role without that key;
/// the export refuses it and names the template's way.
#[test]
fn a_workers_queue_under_its_own_kms_key_is_refused_by_the_export() {
    let (mut topology, config) = shipped();
    let orders = topology
        .queues
        .iter_mut()
        .find(|q| q.name == "fleet-orders")
        .unwrap();
    orders.kms_key = Some("alias/mine".into());
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let err = check(&ctx).unwrap_err();
    assert!(
        err.contains("fleet-orders") && err.contains("QueueEncryption=kms"),
        "{err}"
    );
}
