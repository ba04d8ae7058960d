//! ECS task scale-in protection: the watcher on a real consumer against the local agent, and
//! `fleet run` on moto with `ECS_AGENT_URI` set.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::agent::{Agent, Answers, Request};
use super::common;
use super::common::observe::Consumers;
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
    // Tries at once, after 1 s and after 2 s more: three by 3 s, all protect calls (2 allowed:
    // the first try waits for the watcher's first look, up to its poll interval, on a busy
    // 2-core machine). Not one call per look: the backoff holds.
    assert!((2..=3).contains(&calls.len()), "{calls:?}");
    assert!(calls.iter().all(|c| c.enabled() == Some(true)), "{calls:?}");
    gated.finish(4).await;
    watcher.finish().await;
    gated.consumers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_run_on_moto_is_protected_while_busy_and_released_once_idle() {
    use common::fleet_run::Deployment;
    use fleet_workers::scenario::Scenario;
    let d = Deployment::provision("protect-e2e", 5).await;
    let agent = Agent::start(Answers::Protect).await;
    let stderr = d.dir.join("protected.err");
    let stdout = d.dir.join("protected.out");
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
        .stdout(std::fs::File::create(&stdout).unwrap())
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
    // The agent makes the call with the task role, so the role must allow it: the report lists
    // it like any SDK call, and the ECS export grants it (review finding; deploy::iam tests).
    let report = std::fs::read_to_string(&stdout).unwrap();
    let issued = fleet_workers::iam_actions::parse_report(&report).unwrap();
    assert!(
        issued
            .iter()
            .any(|a| a.to_string() == "ecs:UpdateTaskProtection ecs-tasks:Cluster"),
        "{report}"
    );
}
