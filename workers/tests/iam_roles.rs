//! Each worker's role against what its process really issued, both ways: `fleet run --worker <w>`
//! on moto (and aiosmtpd for SMTP) drives every code path whose action the role grants, prints
//! "IAM actions used by this process:" at exit, and the record must equal the permissions the
//! export derives (`deploy::iam::permissions`) and the actions of the role's policy: nothing
//! missing (it would be refused on AWS), nothing extra (more than the worker needs).
//!
//! Paths driven, per worker:
//! - orders: an order placed and paid (puts, the id's guard, both queries, the outbox published
//!   and deleted), and an event of an order that never comes (retried, then dead-lettered);
//! - analytics: events counted, a malformed message (dead-lettered at once), and an event whose
//!   counter cannot be added to (retried, then dead-lettered);
//! - email on SES: a send refused for an unverified sender (its claim released, dead-lettered),
//!   then sends at 0.5/s, which keep messages waiting past their lease (extended);
//! - email on SMTP (password from an SSM `SecureString`): a 421 (claim released, retried), a 550
//!   (dead-lettered), and sends at 0.5/s.
//!
//! Each process runs as in an ECS task (`ECS_AGENT_URI` names a local agent endpoint), so its
//! task protection calls, made by the agent with the task role, are issued and compared too.
//!
//! Not compared: the grants under the template's `UseKms` condition (moto's queues use SSE-SQS),
//! and `sts:GetCallerIdentity`, which needs no permission.

#![allow(clippy::unwrap_used)]

#[path = "run_platform/agent.rs"]
#[allow(dead_code)]
mod agent;
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use agent::{Agent, Answers};
use common::fleet_run::{Deployment, Ended};
use common::orders::{env, message, paid, placed};
use fleet_bus::topology::Topology;
use fleet_bus::{AttributeValue, OutgoingMessage, Transport};
use fleet_schemas::{EmailRequested, Envelope};
use fleet_tests::smtp::SmtpServer;
use fleet_workers::deploy::iam::{compare, permissions, role};
use fleet_workers::deploy::{ExportContext, Platform};
use fleet_workers::iam_actions::parse_report;
use fleet_workers::run::{Effective, WorkerKind};

const MAX_RECEIVES: u32 = 3;
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(30);
const SMTP_USER: &str = "fleet";
const SMTP_PASSWORD: &str = "iam-test-password";

/// The role of `worker` in the deployment's own configuration and topology, compared with what
/// its run printed.
fn assert_role_matches(d: &Deployment, worker: WorkerKind, ended: &Ended) {
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
    let issued = parse_report(&ended.stdout).unwrap();
    let config = Effective::load(Some(&d.config), std::iter::empty())
        .unwrap()
        .config;
    let topology =
        Topology::from_toml(&std::fs::read_to_string(d.dir.join("topology.toml")).unwrap())
            .unwrap();
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform: Platform::Ecs,
    };
    let granted = permissions(worker, &ctx);
    let diff = compare(&granted, &issued);
    let printed: Vec<String> = issued.iter().map(ToString::to_string).collect();
    assert!(
        diff.is_empty(),
        "{worker}: the role and the issued actions differ:\n{diff}issued:\n{}",
        printed.join("\n")
    );
    let in_role = role_actions(&role(worker, &ctx));
    let used: BTreeSet<String> = issued.iter().map(|i| i.action.clone()).collect();
    assert_eq!(
        in_role, used,
        "{worker}: the role's policy and the issued actions"
    );
    println!(
        "{worker}: {} actions, {} action-resource pairs, as granted:\n{}",
        used.len(),
        issued.len(),
        printed.join("\n")
    );
}

/// The actions of a role's unconditional statements.
fn role_actions(role: &serde_json::Value) -> BTreeSet<String> {
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("Fn::If").is_none())
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `queue` is settled and its dead-letter queue holds `dead` messages.
async fn settle(d: &Deployment, queue: &str, dead: u64) {
    let dlq = format!("{queue}-dlq");
    let started = std::time::Instant::now();
    loop {
        let counts = d.counts(&[queue.to_owned(), dlq.clone()]).await;
        if counts[queue] == 0 && counts[&dlq] == dead {
            return;
        }
        assert!(started.elapsed() < SETTLE_LIMIT, "not settled: {counts:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn publish(d: &Deployment, messages: Vec<OutgoingMessage>) {
    let topic = d.transport.topic(&d.topic()).await.unwrap();
    for m in messages {
        topic.publish(m).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_role_grants_exactly_what_the_orders_worker_issues() {
    let d = Deployment::provision("iam-orders", MAX_RECEIVES).await;
    let agent = Agent::start(Answers::Protect).await;
    let process = d.start_in_ecs(&["orders"], 0, &agent.uri);
    publish(
        &d,
        vec![
            message(&env("e-placed", 0, placed("o-1", "c-1", 1200, true))),
            message(&env("e-orphan", 1, paid("o-never-placed", 500))),
        ],
    )
    .await;
    // The orphan is retried until its receives are spent, then dead-lettered; the order is in.
    settle(&d, &d.orders(), 1).await;
    publish(&d, vec![message(&env("e-paid", 2, paid("o-1", 1200)))]).await;
    settle(&d, &d.orders(), 1).await;
    let ended = process.terminate(STOP_LIMIT);
    assert_role_matches(&d, WorkerKind::Orders, &ended);
}

fn tracked(id: &str, name: &str) -> OutgoingMessage {
    let at = "2026-11-28T12:00:00Z";
    let body = serde_json::json!({
        "id": id, "type": "analytics.tracked", "version": 2, "occurred_at": at,
        "producer": "web",
        "payload": {"name": name, "subject": "u-1", "properties": {}, "timestamp": at},
    });
    OutgoingMessage::new(body.to_string())
        .attribute("type", AttributeValue::string("analytics.tracked"))
}

/// Makes every shard of the day counter of `name` a string, so adding to it fails.
async fn poison_counter(d: &Deployment, name: &str) {
    let client = aws_sdk_dynamodb::Client::new(&d.sdk);
    let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    for shard in 0..4 {
        client
            .put_item()
            .table_name(d.analytics_table())
            .item("PK", s(format!("COUNTER#event#{name}#day#2026-11-28")))
            .item("SK", s(format!("SHARD#{shard}")))
            .item("value", s("not-a-number".to_owned()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_role_grants_exactly_what_the_analytics_worker_issues() {
    let d = Deployment::provision("iam-analytics", MAX_RECEIVES).await;
    poison_counter(&d, "iam_poison").await;
    let agent = Agent::start(Answers::Protect).await;
    let process = d.start_in_ecs(&["analytics"], 0, &agent.uri);
    let queue = d.transport.queue(&d.analytics()).await.unwrap();
    let send = |m: Vec<OutgoingMessage>| {
        let queue = queue.clone();
        async move { queue.sender().send_batch(&m).await.unwrap() }
    };
    send(vec![
        tracked("t-1", "page_viewed"),
        tracked("t-2", "signed_up"),
    ])
    .await;
    settle(&d, &d.analytics(), 0).await;
    send(vec![OutgoingMessage::new("{\"id\": \"broken").attribute(
        "type",
        AttributeValue::string("analytics.tracked"),
    )])
    .await;
    send(vec![tracked("t-poison", "iam_poison")]).await;
    settle(&d, &d.analytics(), 2).await;
    let ended = process.terminate(STOP_LIMIT);
    assert_role_matches(&d, WorkerKind::Analytics, &ended);
}

fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates")
}

/// Sends at 0.5/s one at a time, on a 5 s lease: a request waiting for its turn needs its lease
/// extended.
fn email_section(p: &str, mailer: &str, extra: &str) -> String {
    format!(
        r#"
[email]
enabled = true
queue = "{p}-email"
from = "Fleet <fleet-{p}@example.com>"
templates = "{templates}"
mailer = "{mailer}"
rate_per_second = 0.5
burst = 1
sends_in_flight = 1
claim_lease = "15s"
pause_probe = "5s"
[email.consumer]
pollers = 1
concurrency = 10
wait_time = "2s"
visibility_timeout = "5s"
retry = {{ base = "1s", max = "2s", jitter = "equal" }}
{extra}
"#,
        templates = templates_dir().display()
    )
}

fn request(to: &str, n: usize) -> OutgoingMessage {
    let payload: EmailRequested = serde_json::from_value(serde_json::json!({
        "to": to,
        "content": {"kind": "direct", "subject": format!("request {n}"), "text": "Hello"},
    }))
    .unwrap();
    let envelope = Envelope::new(payload, "tests");
    OutgoingMessage {
        body: serde_json::to_string(&envelope).unwrap(),
        attributes: envelope.attributes(),
        ..OutgoingMessage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_role_on_ses_grants_exactly_what_the_worker_issues() {
    let d = Deployment::provision_with("iam-ses", MAX_RECEIVES, |p| {
        email_section(p, "ses", "[email.ses]\nsend_timeout = \"5s\"\n")
    })
    .await;
    let agent = Agent::start(Answers::Protect).await;
    let process = d.start_in_ecs(&["email"], 0, &agent.uri);
    // The sender is not verified yet: SES refuses, the claim is released, the request
    // dead-lettered.
    publish(&d, vec![request("first@example.com", 0)]).await;
    settle(&d, &d.email(), 1).await;
    fleet_tests::ses::verify_sender(&d.sdk, &format!("fleet-{}@example.com", d.prefix)).await;
    let requests = (1..4)
        .map(|n| request(&format!("c{n}@example.com"), n))
        .collect();
    publish(&d, requests).await;
    settle(&d, &d.email(), 1).await;
    let ended = process.terminate(STOP_LIMIT);
    assert_role_matches(&d, WorkerKind::Email, &ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_role_on_smtp_grants_exactly_what_the_worker_issues() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = Deployment::provision_with("iam-smtp", MAX_RECEIVES, |p| {
        let smtp = format!(
            "[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"{SMTP_USER}\"\npassword_parameter = \"/fleet/email/{p}/smtp-password\"\nca_file = \"{}\"\nsend_timeout = \"5s\"\n",
            server.port,
            server.cert_pem.display()
        );
        email_section(p, "smtp", &smtp)
    })
    .await;
    aws_sdk_ssm::Client::new(&d.sdk)
        .put_parameter()
        .name(format!("/fleet/email/{}/smtp-password", d.prefix))
        .value(SMTP_PASSWORD)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let agent = Agent::start(Answers::Protect).await;
    let process = d.start_in_ecs(&["email"], 0, &agent.uri);
    publish(
        &d,
        vec![
            request("fault-421-1+a@example.org", 0),
            request("fault-550+b@example.org", 1),
            request("c@example.org", 2),
            request("d@example.org", 3),
        ],
    )
    .await;
    settle(&d, &d.email(), 1).await;
    assert_eq!(server.wait_for(3, SETTLE_LIMIT).len(), 3);
    let ended = process.terminate(STOP_LIMIT);
    assert_role_matches(&d, WorkerKind::Email, &ended);
}
