//! The exported template deployed into moto's CloudFormation: the stack creates the queues,
//! dead-letter queues, topic, tables and roles; `fleet provision` then completes what moto's
//! CloudFormation skips (subscriptions, queue and topic policies, the table's TTL) without
//! changing anything the stack set, a second run changes nothing, and `fleet run` processes a
//! scenario end to end on the stack's resources.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::fleet_run::Deployment;
use common::model::check_against_model;
use fleet_workers::scenario::Scenario;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Receives before a dead letter: an event that arrives before its order waits for it.
const MAX_RECEIVES: u32 = 16;

/// Creates a stack from `template` with its queues encrypted as `encryption` says; its outputs.
async fn create_stack(
    sdk: &aws_config::SdkConfig,
    name: &str,
    template: &str,
    encryption: &str,
) -> Vec<(String, String)> {
    common::cloudformation::create_stack(
        sdk,
        name,
        template,
        &[("QueueEncryption", encryption.to_owned())],
    )
    .await
}

/// The logical ids of the stack's resources that moto created.
async fn created_resources(sdk: &aws_config::SdkConfig, stack: &str) -> Vec<String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let out = cfn
        .list_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    out.stack_resource_summaries()
        .iter()
        .filter(|r| r.physical_resource_id().is_some_and(|p| !p.is_empty()))
        .filter_map(|r| r.logical_resource_id().map(str::to_owned))
        .collect()
}

/// `fleet provision`'s report, checked to touch only what moto's CloudFormation skips: nothing
/// the stack created is created again, and the only changes are the policies (moto skips
/// `AWS::SQS::QueuePolicy` and `AWS::SNS::TopicPolicy`) and a table's TTL (moto ignores
/// `TimeToLiveSpecification`).
fn check_first_provision(report: &str, subscriptions: usize) {
    let mut created_subscriptions = 0;
    for line in report.lines() {
        if line.starts_with("created") {
            assert!(
                line.contains("subscription"),
                "provision created what the stack had created: {line}\n{report}"
            );
            created_subscriptions += 1;
        } else if let Some(rest) = line.strip_prefix("updated") {
            let changed = rest.split('(').nth(1).unwrap().trim_end_matches(')');
            for what in changed.split(", ") {
                assert!(
                    what == "Policy" || what == "ttl",
                    "provision changed {what} that the stack had set: {line}\n{report}"
                );
            }
        }
    }
    assert_eq!(created_subscriptions, subscriptions, "{report}");
}

fn provision(topology: &Path) -> String {
    let out = common::fleet(&["provision", "--topology", topology.to_str().unwrap()]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    println!("{}", out.stdout);
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exported_stack_completed_by_fleet_provision_runs_the_fleet_end_to_end() {
    let d = Deployment::write("cfn", MAX_RECEIVES, Deployment::email_off).await;
    let template = d.dir.join("stack.json");
    let out = common::fleet(&[
        "topology",
        "export",
        "--format",
        "cloudformation",
        "--config",
        d.config.to_str().unwrap(),
        "--output",
        template.to_str().unwrap(),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let body = std::fs::read_to_string(&template).unwrap();
    let outputs = create_stack(&d.sdk, &d.prefix, &body, "sqs-managed").await;
    assert!(outputs.is_empty(), "no key output without kms: {outputs:?}");
    let created = created_resources(&d.sdk, &d.prefix).await;
    for id in [
        "QueueCfn",
        "RoleOrders",
        "RoleAnalytics",
        "TopicCfn",
        "TableCfn",
    ] {
        assert!(
            created.iter().any(|c| c.starts_with(id)),
            "{id} not created: {created:?}"
        );
    }
    // Provision finds every queue, topic and table as the topology declares it (visibility,
    // retention, redrive, SSE-SQS, keys, indexes, billing): it changes none of their attributes.
    let first = provision(&d.topology());
    check_first_provision(&first, 3);
    let second = provision(&d.topology());
    assert!(second.ends_with("no changes\n"), "{second}");

    let scenario = Scenario::generate(21, 30, 120, 0.1);
    let fleet = d.start(&["orders", "analytics"], 1);
    d.publish(&scenario).await;
    d.wait_until_drained(&[d.orders(), d.analytics()], Duration::from_secs(240))
        .await;
    let ended = fleet.terminate(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
    check_against_model(&d, &scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_template_with_kms_deploys_and_provision_with_its_key_fights_nothing() {
    let template =
        std::fs::read_to_string(Path::new(REPO).join("deploy/cloudformation/fleet.json")).unwrap();
    let sdk = fleet_tests::moto::sdk_config().await;
    let outputs = create_stack(&sdk, "fleet-kms", &template, "kms").await;
    let key = &outputs
        .iter()
        .find(|(k, _)| k == "QueueKeyArn")
        .unwrap_or_else(|| panic!("no QueueKeyArn output: {outputs:?}"))
        .1;
    assert!(key.starts_with("arn:aws:kms:"), "{key}");
    let created = created_resources(&sdk, "fleet-kms").await;
    assert!(created.iter().any(|c| c == "QueueKey"), "{created:?}");
    // The shipped topology, with the stack's key on every queue (its dead-letter queues take
    // it from the queue that redrives into them).
    let shipped = std::fs::read_to_string(Path::new(REPO).join("deploy/topology.toml")).unwrap();
    let with_key = shipped.replace(
        "\nvisibility_timeout_seconds",
        &format!("\nkms_key = \"{key}\"\nvisibility_timeout_seconds"),
    );
    assert_eq!(with_key.matches("kms_key").count(), 3, "{with_key}");
    let dir = std::env::temp_dir().join(fleet_bus::scenarios::unique_name("cfn-kms"));
    std::fs::create_dir_all(&dir).unwrap();
    let topology = dir.join("topology.toml");
    std::fs::write(&topology, with_key).unwrap();

    let first = provision(&topology);
    check_first_provision(&first, 3);
    let second = provision(&topology);
    assert!(second.ends_with("no changes\n"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_puts_a_queue_under_its_kms_key_and_every_queue_refuses_plain_http() {
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    let sdk = fleet_tests::moto::sdk_config().await;
    let name = fleet_bus::scenarios::unique_name("kms");
    let topology = fleet_bus::Topology::from_toml(&format!(
        "[[queue]]\nname = \"{name}\"\nkms_key = \"alias/fleet-test\"\ndead_letter = {{ queue = \"{name}-dlq\", max_receive_count = 3 }}\n"
    ))
    .unwrap();
    let transport = fleet_bus::aws::SqsTransport::new(&sdk);
    let first = fleet_bus::provision(&transport, &topology).await.unwrap();
    assert!(first.changed(), "{first}");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for queue in [name.clone(), format!("{name}-dlq")] {
        let url = transport.queue_url(&queue).await.unwrap().unwrap();
        let out = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(Q::All)
            .send()
            .await
            .unwrap();
        let attributes = out.attributes().unwrap();
        assert_eq!(
            attributes.get(&Q::KmsMasterKeyId).map(String::as_str),
            Some("alias/fleet-test"),
            "{queue}: {attributes:?}"
        );
        // The dead-letter queue has no subscription, and still refuses plain HTTP.
        let policy: serde_json::Value =
            serde_json::from_str(attributes.get(&Q::Policy).unwrap()).unwrap();
        let tls = &policy["Statement"][0];
        assert_eq!(tls["Sid"], "fleet-tls-only", "{queue}: {policy}");
        assert_eq!(tls["Effect"], "Deny");
        assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
    }
    let second = fleet_bus::provision(&transport, &topology).await.unwrap();
    assert!(!second.changed(), "{second}");
}
