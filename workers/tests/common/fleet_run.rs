//! A whole deployment on moto for end-to-end tests of `fleet run`: a topology and a
//! configuration under unique names (written to files, provisioned as `fleet provision` does),
//! `fleet run` processes to start, kill and stop, and what the tests read back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use fleet_bus::aws::SqsTransport;
use fleet_bus::producer::BatchProducer;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Topology, Transport};
use fleet_schemas::Producer;
use fleet_tests::moto;
use fleet_workers::scenario::Scenario;

/// Queues, topic, table and configuration of one test, on moto.
pub struct Deployment {
    /// The unique prefix of every name.
    pub prefix: String,
    /// Where the files are.
    pub dir: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// The SDK configuration for moto.
    pub sdk: SdkConfig,
    /// The transport on moto.
    pub transport: SqsTransport,
}

impl Deployment {
    /// The orders queue.
    pub fn orders(&self) -> String {
        format!("{}-orders", self.prefix)
    }
    /// The analytics queue.
    pub fn analytics(&self) -> String {
        format!("{}-analytics", self.prefix)
    }
    /// The email queue (nobody consumes it in these tests: `email.enabled = false`).
    pub fn email(&self) -> String {
        format!("{}-email", self.prefix)
    }
    /// The events topic.
    pub fn topic(&self) -> String {
        format!("{}-events", self.prefix)
    }
    /// The orders' table.
    pub fn table(&self) -> String {
        format!("{}-table", self.prefix)
    }
    /// The analytics counters' table: a table of its own on moto, whose `TransactWriteItems`
    /// copies the whole table it touches on every call, so the orders' table stays small.
    pub fn analytics_table(&self) -> String {
        format!("{}-counters", self.prefix)
    }

    /// Writes and provisions a deployment like `deploy/`'s, with `max_receive_count` receives
    /// before a dead letter.
    pub async fn provision(name: &str, max_receive_count: u32) -> Self {
        Self::provision_with(name, max_receive_count, Self::email_off).await
    }

    /// As [`provision`](Self::provision), with the `[email]` section `email(prefix)` writes.
    pub async fn provision_with(
        name: &str,
        max_receive_count: u32,
        email: impl FnOnce(&str) -> String,
    ) -> Self {
        let d = Self::write(name, max_receive_count, email).await;
        d.provision_topology().await;
        d
    }

    /// Provisions what the deployment's topology file declares now (queues, topics,
    /// subscriptions, tables): after [`write`](Self::write), or after a test edited the file.
    pub async fn provision_topology(&self) {
        let parsed = Topology::from_file(self.topology()).unwrap();
        fleet_bus::provision(&self.transport, &parsed)
            .await
            .unwrap();
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        fleet_bus::aws::table::provision_tables(&dynamodb, &parsed)
            .await
            .unwrap();
    }

    /// Runs `fleet run` with these workers until `queues` are drained, then stops it with
    /// SIGTERM and checks that it drained (exit 0).
    pub async fn run_until_drained(
        &self,
        workers: &[&str],
        n: usize,
        queues: &[String],
        limit: Duration,
    ) {
        let running = self.start(workers, n);
        self.wait_until_drained(queues, limit).await;
        let ended = tokio::task::spawn_blocking(move || running.terminate(Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    }

    /// Writes the topology and configuration files of a deployment without creating anything
    /// (for a test that creates the resources another way, such as a CloudFormation stack).
    pub async fn write(
        name: &str,
        max_receive_count: u32,
        email: impl FnOnce(&str) -> String,
    ) -> Self {
        let prefix = unique_name(name);
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("topology.toml"),
            topology(&prefix, max_receive_count),
        )
        .unwrap();
        let config = dir.join("fleet.toml");
        let text = format!("{}\n{}", fleet_toml(&prefix), email(&prefix));
        std::fs::write(&config, text).unwrap();
        let sdk = moto::sdk_config().await;
        let transport = SqsTransport::new(&sdk);
        Self {
            prefix,
            dir,
            config,
            sdk,
            transport,
        }
    }

    /// Sets `queue`'s visibility timeout in the topology file (before provisioning it).
    pub fn set_visibility_timeout(&self, queue: &str, seconds: u32) {
        let text = std::fs::read_to_string(self.topology()).unwrap();
        let name = format!("name = \"{queue}\"");
        assert!(
            text.contains(&name),
            "no queue {queue} in the topology: {text}"
        );
        let mut out = Vec::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            out.push(line.to_owned());
            if line.trim() == name {
                if lines
                    .peek()
                    .is_some_and(|l| l.starts_with("visibility_timeout_seconds"))
                {
                    lines.next();
                }
                out.push(format!("visibility_timeout_seconds = {seconds}"));
            }
        }
        std::fs::write(self.topology(), out.join("\n") + "\n").unwrap();
    }

    /// Stores the SMTP password where [`smtp_email_section`] points the email worker (SSM, as
    /// `fleet run` reads it).
    pub async fn put_smtp_password(&self, password: &str) {
        aws_sdk_ssm::Client::new(&self.sdk)
            .put_parameter()
            .name(format!("/fleet/email/{}/smtp-password", self.prefix))
            .value(password)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    /// The topology file.
    pub fn topology(&self) -> PathBuf {
        self.dir.join("topology.toml")
    }

    /// The `[email]` section of [`provision`](Self::provision): the email worker off.
    pub fn email_off(prefix: &str) -> String {
        format!(
            "# These tests check the confirmations the orders worker publishes, on the email queue.\n[email]\nenabled = false\nqueue = \"{prefix}-email\"\n"
        )
    }

    /// Starts `fleet run` with these workers (all when empty); `n` numbers its log files. It logs
    /// at `warn`, or at the `FLEET_TEST_LOG` filter when set (to diagnose a failing run: the log
    /// files stay in the deployment's temporary folder).
    pub fn start(&self, workers: &[&str], n: usize) -> Process {
        self.start_with_env(workers, n, &[])
    }

    /// As [`start`](Self::start), inside an ECS task whose agent endpoint is `agent_uri`
    /// (`ECS_AGENT_URI`): `fleet run` holds task protection through it while busy.
    pub fn start_in_ecs(&self, workers: &[&str], n: usize, agent_uri: &str) -> Process {
        self.start_with_env(workers, n, &[("ECS_AGENT_URI", agent_uri)])
    }

    /// As [`start`](Self::start), with these variables set too (`FAILPOINTS`, for one).
    pub fn start_with_env(&self, workers: &[&str], n: usize, env: &[(&str, &str)]) -> Process {
        let level = std::env::var("FLEET_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        self.spawn(workers, n, &level, env)
    }

    /// As [`start`](Self::start), logging at `level` (a `FLEET_LOG` filter).
    pub fn start_logging(&self, workers: &[&str], n: usize, level: &str) -> Process {
        self.spawn(workers, n, level, &[])
    }

    fn spawn(&self, workers: &[&str], n: usize, level: &str, env: &[(&str, &str)]) -> Process {
        let stdout = self.dir.join(format!("run-{n}.out"));
        let stderr = self.dir.join(format!("run-{n}.err"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleet"));
        command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&self.config);
        for w in workers {
            command.args(["--worker", w]);
        }
        command
            .env("AWS_ENDPOINT_URL", &moto::moto().endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "fleet-test")
            .env("AWS_SECRET_ACCESS_KEY", "fleet-test")
            .env("FLEET_LOG", level)
            .envs(env.iter().copied())
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        Process {
            child: command.spawn().expect("start fleet run"),
            stdout,
            stderr,
        }
    }

    /// Publishes the scenario's events to the topic, in its shuffled order, duplicates included.
    pub async fn publish(&self, scenario: &Scenario) {
        let topic = self.transport.topic(&self.topic()).await.unwrap();
        let producer = Producer::new(
            BatchProducer::to_topic(self.topic(), topic.clone()),
            "tests",
        );
        let messages: Vec<_> = scenario
            .publish
            .iter()
            .map(|&i| producer.message_for(&scenario.events[i].envelope).unwrap())
            .collect();
        let report = BatchProducer::to_topic(self.topic(), topic)
            .send_all(messages, |_| {})
            .await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }

    /// Publishes a written-out email request to `to` (through the topic, as a producer would);
    /// returns the request's id.
    pub async fn publish_email_request(&self, to: &str) -> String {
        let content = serde_json::json!({"kind": "direct", "subject": "tests", "text": "Hello"});
        let payload: fleet_schemas::EmailRequested =
            serde_json::from_value(serde_json::json!({"to": to, "content": content})).unwrap();
        let request = fleet_schemas::Envelope::new(payload, "tests");
        let topic = self.transport.topic(&self.topic()).await.unwrap();
        let sender = BatchProducer::to_topic(self.topic(), topic);
        let message = Producer::new(sender.clone(), "tests")
            .message(&request)
            .unwrap();
        let report = sender.send_all(vec![message], |_| {}).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        request.header.id
    }

    /// Waits until the worker queues are empty (nothing visible, in flight or delayed) three
    /// polls in a row, or panics after `limit`.
    pub async fn wait_until_drained(&self, queues: &[String], limit: Duration) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 3 {
            assert!(
                started.elapsed() < limit,
                "queues not drained within {limit:?}: {:?}",
                self.counts(queues).await
            );
            let counts = self.counts(queues).await;
            quiet = if counts.values().all(|c| *c == 0) {
                quiet + 1
            } else {
                0
            };
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }

    /// Visible + in flight + delayed, per queue.
    pub async fn counts(&self, queues: &[String]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for q in queues {
            let c = fleet_bus::scenarios::support::counts(&self.transport, q).await;
            out.insert(q.clone(), c.visible + c.in_flight + c.delayed);
        }
        out
    }

    /// Every message in a queue, received once each (kept invisible for five minutes).
    pub async fn drain_queue(&self, queue: &str) -> Vec<fleet_bus::Message> {
        let handle = self.transport.queue(queue).await.unwrap();
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let batch = handle
                .queue()
                .receive(&fleet_bus::ReceiveRequest {
                    max_messages: 10,
                    wait_time: Duration::from_secs(1),
                    visibility_timeout: Some(Duration::from_secs(300)),
                })
                .await
                .unwrap();
            if batch.is_empty() {
                empty += 1;
                continue;
            }
            empty = 0;
            out.extend(batch);
        }
        out
    }
}

/// A running `fleet run`.
pub struct Process {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Process {
    /// A test that fails leaves no `fleet run` behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a process ended.
pub struct Ended {
    /// The exit code (`None` when killed).
    pub code: Option<i32>,
    /// What it printed.
    pub stdout: String,
    /// Its logs.
    pub stderr: String,
}

impl Process {
    /// SIGKILL: no drain, no report.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `limit` for it to exit.
    pub fn terminate(self, limit: Duration) -> Ended {
        self.signal("TERM");
        self.wait_exit(limit)
    }

    /// Sends a signal (`TERM`, `INT`) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{name}"), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits up to `limit` for it to exit (after a signal).
    pub fn wait_exit(mut self, limit: Duration) -> Ended {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Ended {
                    code: status.code(),
                    stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
                };
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "fleet run did not exit within {limit:?}: {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether it is still running (a startup failure ends it).
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its logs so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// The ids of the envelopes in message bodies, one per message (copies included), in order.
///
/// # Panics
/// When a body is not an envelope.
pub fn envelope_id_list(messages: &[fleet_bus::Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The ids of envelopes in message bodies (raw delivery: the body is the envelope).
pub fn envelope_ids(messages: &[fleet_bus::Message]) -> BTreeSet<String> {
    messages
        .iter()
        .filter_map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).ok()?;
            Some(v.get("id")?.as_str()?.to_owned())
        })
        .collect()
}

/// An `[email]` section sending through `server` (STARTTLS, AUTH as `user`, the password in SSM:
/// [`Deployment::put_smtp_password`]), with claims held for `claim_lease` (a `fleet.toml`
/// duration) and one send in flight per process.
pub fn smtp_email_section(
    p: &str,
    server: &fleet_tests::smtp::SmtpServer,
    user: &str,
    claim_lease: &str,
) -> String {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates");
    format!(
        r#"
[email]
enabled = true
queue = "{p}-email"
from = "Fleet <fleet-{p}@example.com>"
templates = "{templates}"
mailer = "smtp"
rate_per_second = 50.0
burst = 5
sends_in_flight = 1
claim_lease = "{claim_lease}"
pause_probe = "5s"
[email.consumer]
pollers = 1
concurrency = 4
wait_time = "1s"
retry = {{ base = "1s", max = "2s", jitter = "equal" }}
[email.smtp]
host = "127.0.0.1"
port = {port}
tls = "starttls"
username = "{user}"
password_parameter = "/fleet/email/{p}/smtp-password"
ca_file = "{cert}"
send_timeout = "5s"
"#,
        templates = templates.display(),
        port = server.port,
        cert = server.cert_pem.display()
    )
}

fn topology(p: &str, max_receive_count: u32) -> String {
    format!(
        r#"
[[topic]]
name = "{p}-events"
[[topic.subscription]]
queue = "{p}-email"
raw_delivery = true
filter_policy = {{ type = ["email.requested"] }}
[[topic.subscription]]
queue = "{p}-analytics"
raw_delivery = true
filter_policy = {{ type = [{{ anything-but = ["email.requested"] }}] }}
[[topic.subscription]]
queue = "{p}-orders"
raw_delivery = true
filter_policy = {{ type = [{{ prefix = "order." }}] }}

[[queue]]
name = "{p}-email"
dead_letter = {{ queue = "{p}-email-dlq", max_receive_count = {max_receive_count} }}
[[queue]]
name = "{p}-analytics"
visibility_timeout_seconds = 20
dead_letter = {{ queue = "{p}-analytics-dlq", max_receive_count = {max_receive_count} }}
[[queue]]
name = "{p}-orders"
visibility_timeout_seconds = 20
dead_letter = {{ queue = "{p}-orders-dlq", max_receive_count = {max_receive_count} }}

[[table]]
name = "{p}-counters"
partition_key = "PK"
sort_key = "SK"
ttl_attribute = "expiration"

[[table]]
name = "{p}-table"
partition_key = "PK"
sort_key = "SK"
ttl_attribute = "expiration"
[[table.index]]
name = "GSI1"
partition_key = "GSI1PK"
sort_key = "GSI1SK"
[[table.index]]
name = "GSI2"
partition_key = "GSI2PK"
sort_key = "GSI2SK"
"#
    )
}

fn fleet_toml(p: &str) -> String {
    format!(
        r#"
topology = "topology.toml"
table = "{p}-table"
events_topic = "{p}-events"
shutdown_timeout = "10s"

[orders]
queue = "{p}-orders"
[orders.consumer]
pollers = 2
concurrency = 20
wait_time = "2s"
retry = {{ base = "2s", max = "30s", jitter = "equal" }}

[analytics]
queue = "{p}-analytics"
table = "{p}-counters"
[analytics.consumer]
pollers = 2
wait_time = "2s"
retry = {{ base = "1s", max = "8s", jitter = "equal" }}
"#
    )
}
