//! The email worker end to end, as operators run it: `fleet run --worker email` against moto
//! (SQS, DynamoDB claims, SSM, SES v2) and a real SMTP server (aiosmtpd, STARTTLS with a
//! self-signed certificate, AUTH with a password from an SSM `SecureString`).
//!
//! - 500 requests with 10 % duplicates while the worker is SIGKILLed three times: every request
//!   is sent exactly once, or dead-lettered `delivery_unknown`, at most one per kill (one send in
//!   flight per process); counted at the SMTP server, and in moto's record of SES mail;
//! - 421, 451 and a dropped connection are retried; 550 is dead-lettered with its reason;
//! - a rate of 10/s over a backlog of 200: no 1-second window has more than 10 + burst sends;
//! - no log line of any run holds a full address or the password, nor does `fleet config check`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fleet_run::{Deployment, Ended, Process};
use fleet_bus::Transport;
use fleet_bus::consumer::dead_letter::{DeadLetterReason, is_note};
use fleet_bus::producer::BatchProducer;
use fleet_schemas::{EmailRequested, Envelope, Producer};
use fleet_tests::smtp::SmtpServer;
use fleet_workers::email::privacy::has_full_address;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const KILLS: usize = 3;
const REQUESTS: usize = 500;
const STOP_LIMIT: Duration = Duration::from_secs(30);
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
const SMTP_USER: &str = "fleet";
/// What the logs are searched for: it must never appear.
const SMTP_PASSWORD: &str = "s3cret-Pa55word-from-ssm";
/// Every message-scoped line the workers write.
const LOG_LEVEL: &str = "info,fleet_workers=debug,fleet_bus=debug";

fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates")
}

/// The `[email]` section of a test deployment.
fn email_section(
    p: &str,
    mailer: &str,
    rate: f64,
    burst: u32,
    in_flight: usize,
    extra: &str,
) -> String {
    format!(
        r#"
[email]
enabled = true
queue = "{p}-email"
from = "Fleet <fleet-{p}@example.com>"
templates = "{templates}"
mailer = "{mailer}"
rate_per_second = {rate:.1}
burst = {burst}
sends_in_flight = {in_flight}
claim_lease = "15s"
pause_probe = "5s"
[email.consumer]
pollers = 1
concurrency = 10
wait_time = "2s"
retry = {{ base = "1s", max = "4s", jitter = "equal" }}
{extra}
"#,
        templates = templates_dir().display()
    )
}

fn smtp_section(p: &str, server: &SmtpServer) -> String {
    format!(
        r#"
[email.smtp]
host = "127.0.0.1"
port = {port}
tls = "starttls"
username = "{SMTP_USER}"
password_parameter = "/fleet/email/{p}/smtp-password"
ca_file = "{cert}"
send_timeout = "5s"
"#,
        port = server.port,
        cert = server.cert_pem.display()
    )
}

async fn put_password(d: &Deployment) {
    aws_sdk_ssm::Client::new(&d.sdk)
        .put_parameter()
        .name(format!("/fleet/email/{}/smtp-password", d.prefix))
        .value(SMTP_PASSWORD)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// One request per recipient: the order confirmation template with its sample data, or, for
/// SES (moto keeps no tags), a written-out email whose subject names the request.
fn request(to: &str, n: usize, direct: bool) -> Envelope<EmailRequested> {
    let content = if direct {
        serde_json::json!({"kind": "direct", "subject": format!("request {n}"), "text": "Hello"})
    } else {
        let data: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(templates_dir().join("order_confirmation/sample.json"))
                .unwrap(),
        )
        .unwrap();
        serde_json::json!({"kind": "template", "template": "order_confirmation", "data": data})
    };
    let payload: EmailRequested =
        serde_json::from_value(serde_json::json!({"to": to, "content": content})).unwrap();
    Envelope::new(payload, "tests")
}

/// `n` requests (plus `faults` recipients first) and the order they are published in: each
/// once, a tenth of them twice, shuffled.
fn requests(
    seed: u64,
    n: usize,
    faults: &[&str],
    direct: bool,
) -> (Vec<Envelope<EmailRequested>>, Vec<usize>) {
    let mut all: Vec<Envelope<EmailRequested>> = faults
        .iter()
        .enumerate()
        .map(|(i, to)| request(to, i, direct))
        .collect();
    for i in all.len()..n {
        all.push(request(&format!("customer{i}@example.com"), i, direct));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..all.len()).collect();
    for _ in 0..n / 10 {
        order.push(rng.random_range(0..all.len()));
    }
    order.shuffle(&mut rng);
    (all, order)
}

async fn publish(d: &Deployment, all: &[Envelope<EmailRequested>], order: &[usize]) {
    let topic = d.transport.topic(&d.topic()).await.unwrap();
    let sender = BatchProducer::to_topic(d.topic(), topic);
    let producer = Producer::new(sender.clone(), "tests");
    let messages: Vec<_> = order
        .iter()
        .map(|&i| producer.message(&all[i]).unwrap())
        .collect();
    let report = sender.send_all(messages, |_| {}).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

/// Publishes a request whose recipient is not an address (a display name with it): its decode
/// error must name no full address, in the dead letter or in any log line. Returns its id.
async fn publish_malformed(d: &Deployment, like: &Envelope<EmailRequested>) -> String {
    let mut body = serde_json::to_value(like).unwrap();
    let id = format!("{}-malformed", like.header.id);
    body["id"] = id.clone().into();
    body["payload"]["to"] = "Ada Lovelace <ada@example.com>".into();
    let message = fleet_bus::OutgoingMessage::new(body.to_string())
        .attribute("type", fleet_bus::AttributeValue::string("email.requested"));
    d.transport
        .topic(&d.topic())
        .await
        .unwrap()
        .publish(message)
        .await
        .unwrap();
    id
}

fn assert_drained(ended: &Ended) {
    assert_eq!(
        ended.code,
        Some(0),
        "exit {:?}\n{}\n{}",
        ended.code,
        ended.stdout,
        ended.stderr
    );
    assert!(ended.stdout.contains("abandoned 0"), "{}", ended.stdout);
}

/// Starts the email worker and SIGKILLs it each time `sent()` (what the provider has) passes
/// the next of `KILLS` seeded thresholds, so every kill lands while it sends; lets the last
/// process drain the queue and stops it with SIGTERM.
async fn run_with_kills(d: &Deployment, seed: u64, sent: impl Fn() -> usize) -> Ended {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut thresholds: Vec<usize> = (0..KILLS)
        .map(|k| 60 + k * 130 + rng.random_range(0..60))
        .collect();
    thresholds.sort_unstable();
    let mut process: Process = d.start_logging(&["email"], 1, LOG_LEVEL);
    for (n, threshold) in thresholds.into_iter().enumerate() {
        let started = std::time::Instant::now();
        while sent() < threshold {
            assert!(
                process.running(),
                "fleet run died on its own:\n{}",
                process.logs()
            );
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} sent, {threshold} expected before kill {}",
                sent(),
                n + 1
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        process.kill();
        println!("SIGKILL {} at {} sent", n + 1, sent());
        process = d.start_logging(&["email"], 2 + n, LOG_LEVEL);
    }
    d.wait_until_drained(&[d.email()], DRAIN_LIMIT).await;
    let ended = process.terminate(STOP_LIMIT);
    assert_drained(&ended);
    ended
}

/// The email dead-letter queue's letters: request id → reason.
async fn dead_letters(d: &Deployment) -> Vec<(String, DeadLetterReason)> {
    d.drain_queue(&format!("{}-dlq", d.email()))
        .await
        .iter()
        .filter(|m| !is_note(m))
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            let reason = DeadLetterReason::from_message(m)
                .unwrap_or_else(|| panic!("a dead letter without its reason: {m:?}"));
            (v["id"].as_str().unwrap().to_owned(), reason)
        })
        .collect()
}

/// Every line of every run's logs and output in the deployment's directory.
fn all_log_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("run-") {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(|l| format!("{name}: {l}")));
        }
    }
    lines
}

fn assert_logs_are_clean(d: &Deployment) {
    // The sender is the operator's own identity, not a person's address: the "IAM actions used"
    // report names it because the role must (`ses:SendEmail` on `identity/<sender>`). Every
    // other full address (a recipient's) is a leak.
    let sender = format!("fleet-{}@example.com", d.prefix);
    let lines: Vec<String> = all_log_lines(&d.dir)
        .into_iter()
        .map(|l| l.replace(&sender, "<sender>"))
        .collect();
    assert!(
        lines.len() > 100,
        "the runs logged {} lines: too few to mean anything",
        lines.len()
    );
    let leaks: Vec<&String> = lines
        .iter()
        .filter(|l| has_full_address(l) || l.contains(SMTP_PASSWORD))
        .take(5)
        .collect();
    assert!(
        leaks.is_empty(),
        "log lines with a full address or the password: {leaks:#?}"
    );
    println!(
        "{} log lines scanned: no full address, no password",
        lines.len()
    );
}

/// `email.sent` reached the analytics queue for every request sent and confirmed, never for one
/// not sent, and names no address.
async fn check_email_sent(
    d: &Deployment,
    sent: &BTreeMap<String, usize>,
    dead: &[(String, DeadLetterReason)],
) {
    let unknown: BTreeSet<&str> = dead
        .iter()
        .filter(|(_, r)| r.kind == "delivery_unknown")
        .map(|(id, _)| id.as_str())
        .collect();
    let mut published = BTreeSet::new();
    for m in d.drain_queue(&d.analytics()).await {
        assert!(!has_full_address(&m.body), "{}", m.body);
        let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(v["type"], "email.sent", "{}", m.body);
        let request = v["payload"]["request_id"].as_str().unwrap().to_owned();
        assert_eq!(v["id"], format!("{request}:sent"));
        published.insert(request);
    }
    for id in &published {
        assert!(
            sent.contains_key(id),
            "email.sent for {id}, which was never sent"
        );
    }
    for id in sent.keys() {
        assert!(
            published.contains(id) || unknown.contains(id.as_str()),
            "{id} was sent and confirmed, yet no email.sent"
        );
    }
    println!(
        "email.sent published for {} of {} sent requests",
        published.len(),
        sent.len()
    );
}

/// The ledger of one run: every request sent exactly once or dead-lettered as expected.
fn check_ledger(
    all: &[Envelope<EmailRequested>],
    sent: &BTreeMap<String, usize>,
    dead: &[(String, DeadLetterReason)],
    rejected: &BTreeSet<String>,
) {
    let mut unknown = BTreeSet::new();
    let mut dead_ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, reason) in dead {
        dead_ids.entry(id).or_default().push(&reason.kind);
        assert!(!has_full_address(&reason.message), "{}", reason.message);
        match reason.kind.as_str() {
            "delivery_unknown" => {
                unknown.insert(id.clone());
            }
            "email_rejected" => assert!(rejected.contains(id), "{id} rejected: {}", reason.message),
            other => panic!("{id} dead-lettered as {other}: {}", reason.message),
        }
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let mut lost = Vec::new();
    for r in all {
        let id = &r.header.id;
        let ok = sent.contains_key(id)
            || unknown.contains(id)
            || rejected.contains(id) && dead_ids.contains_key(id.as_str());
        if !ok {
            lost.push(id.clone());
        }
    }
    assert!(lost.is_empty(), "neither sent nor dead-lettered: {lost:?}");
    for id in rejected {
        assert!(!sent.contains_key(id), "{id} was rejected, yet sent");
    }
    println!(
        "ledger: {} requests, {} sent once, {} delivery_unknown (kills {KILLS}), {} rejected, 0 sent twice, 0 lost",
        all.len(),
        sent.len(),
        unknown.len(),
        rejected.len()
    );
    assert!(
        unknown.len() <= KILLS,
        "{} delivery_unknown for {KILLS} kills: {unknown:?}",
        unknown.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_five_hundred_requests_with_duplicates_and_three_kills_are_each_sent_once() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = Deployment::provision_with("email-smtp", 10, |p| {
        email_section(p, "smtp", 100.0, 5, 1, &smtp_section(p, &server))
    })
    .await;
    put_password(&d).await;
    let faults = [
        "fault-421-1+a@example.org",
        "fault-451-2+b@example.org",
        "fault-drop-1+c@example.org",
        "fault-550+d@example.org",
    ];
    let (all, order) = requests(10, REQUESTS, &faults, false);
    let rejected: BTreeSet<String> = [all[3].header.id.clone()].into();
    publish(&d, &all, &order).await;
    let malformed = publish_malformed(&d, &all[10]).await;
    let ended = run_with_kills(&d, 10, || server.accepted().len()).await;
    println!("{}", ended.stdout);

    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for m in server.accepted() {
        *sent.entry(m.event_id.clone().unwrap()).or_default() += 1;
    }
    let mut dead = dead_letters(&d).await;
    let (bad, reason) = dead.remove(dead.iter().position(|(id, _)| *id == malformed).unwrap());
    println!(
        "the malformed request: dead-lettered as {} ({})",
        reason.kind, reason.message
    );
    assert_eq!(bad, malformed);
    assert!(
        reason.message.contains("***@example.com") && !has_full_address(&reason.message),
        "{}",
        reason.message
    );
    check_ledger(&all, &sent, &dead, &rejected);
    // The retried faults went out, once each.
    for r in &all[..3] {
        assert_eq!(
            sent.get(&r.header.id),
            Some(&1),
            "{}",
            r.payload.to.as_str()
        );
    }
    check_email_sent(&d, &sent, &dead).await;
    let (_, reason) = dead.iter().find(|(id, _)| rejected.contains(id)).unwrap();
    assert!(
        reason.message.contains("smtp_550") && reason.message.contains("f***@example.org"),
        "{}",
        reason.message
    );
    assert_logs_are_clean(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_five_hundred_requests_with_duplicates_and_three_kills_are_each_sent_once() {
    let d = Deployment::provision_with("email-ses", 10, |p| {
        email_section(
            p,
            "ses",
            100.0,
            5,
            1,
            "[email.ses]\nsend_timeout = \"10s\"\n",
        )
    })
    .await;
    let from = format!("fleet-{}@example.com", d.prefix);
    fleet_tests::ses::verify_sender(&d.sdk, &from).await;
    let (all, order) = requests(20, REQUESTS, &[], true);
    publish(&d, &all, &order).await;
    let sent_so_far = || {
        fleet_tests::ses::sent_emails()
            .iter()
            .filter(|m| m.source.contains(&from))
            .count()
    };
    let ended = run_with_kills(&d, 20, sent_so_far).await;
    println!("{}", ended.stdout);

    let by_subject: BTreeMap<String, String> = all
        .iter()
        .map(|r| match &r.payload.content {
            fleet_schemas::EmailContent::Direct { subject, .. } => {
                (subject.as_str().to_owned(), r.header.id.clone())
            }
            fleet_schemas::EmailContent::Template { .. } => unreachable!(),
        })
        .collect();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for m in fleet_tests::ses::sent_emails() {
        if m.source.contains(&from) {
            *sent.entry(by_subject[&m.subject].clone()).or_default() += 1;
        }
    }
    let dead = dead_letters(&d).await;
    check_ledger(&all, &sent, &dead, &BTreeSet::new());
    check_email_sent(&d, &sent, &dead).await;
    assert_logs_are_clean(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_two_hundred_at_ten_a_second_never_exceeds_the_rate_plus_the_burst() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = Deployment::provision_with("email-rate", 10, |p| {
        email_section(p, "smtp", 10.0, 1, 4, &smtp_section(p, &server))
    })
    .await;
    put_password(&d).await;
    let all: Vec<_> = (0..200)
        .map(|i| request(&format!("r{i}@example.com"), i, false))
        .collect();
    let order: Vec<usize> = (0..all.len()).collect();
    publish(&d, &all, &order).await;
    let process = d.start_logging(&["email"], 1, LOG_LEVEL);
    let accepted = server.wait_for(200, Duration::from_secs(90));
    let ended = process.terminate(STOP_LIMIT);
    assert_drained(&ended);
    let mut at: Vec<f64> = accepted.iter().map(|m| m.at).collect();
    at.sort_by(f64::total_cmp);
    let mut busiest = 0;
    for (i, t) in at.iter().enumerate() {
        let in_window = at[i..].iter().take_while(|u| **u < t + 1.0).count();
        busiest = busiest.max(in_window);
    }
    let span = at[at.len() - 1] - at[0];
    let gaps: Vec<String> = at
        .windows(2)
        .take(12)
        .map(|w| format!("{:.0}", (w[1] - w[0]) * 1000.0))
        .collect();
    println!("first gaps (ms): {}", gaps.join(" "));
    println!(
        "200 sends over {span:.1} s; the busiest 1-second window held {busiest} (rate 10, burst 1)"
    );
    assert!(busiest <= 11, "{busiest} sends in one second");
    assert!(span >= 18.0, "200 sends at 10/s took {span:.1} s");
    assert_eq!(accepted.len(), 200);
}

#[tokio::test]
async fn fleet_config_check_names_the_password_parameter_and_never_the_password() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = Deployment::provision_with("email-config", 5, |p| {
        email_section(p, "smtp", 10.0, 1, 1, &smtp_section(p, &server))
    })
    .await;
    put_password(&d).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["config", "check", "--config"])
        .arg(&d.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "password_parameter = \"/fleet/email/{}/smtp-password\"",
            d.prefix
        )),
        "{text}"
    );
    assert!(!text.contains(SMTP_PASSWORD), "{text}");
}
