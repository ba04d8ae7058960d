//! `/metrics` as Prometheus meets it: a real Prometheus scraping `fleet run` on moto and the
//! processed-message rate read back through its HTTP API, `promtool check metrics` finding
//! nothing to report, and the number of series of a process with ten queues.
//!
//! Prometheus and promtool come from Debian's `prometheus` package (`./scripts/test` installs
//! it); without them these tests fail saying how to install it. With `FLEET_SCRAPE_OUT` set, the
//! Prometheus test writes its final scrape there (to check the dashboard's queries against).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fleet_run::{Deployment, Process};
use common::observe::{self, Consumers, scrape, series, sum};
use fleet_bus::consumer::{Delivery, HandlerError, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::scenarios::support::{counts, declare_with_dlq, send_all, wait_until};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, OutgoingMessage, QueueCounts};
use fleet_tests::prometheus::{Prometheus, check_metrics, prometheus_binary, promtool_binary};
use fleet_workers::observe::{Observability, Probes, QueueStatsConfig, Watched};
use fleet_workers::scenario::Scenario;

const SERIES_BUDGET: usize = 500;
const DRAIN_LIMIT: Duration = Duration::from_secs(240);

/// A handler that succeeds, fails once then succeeds (`retry`), or refuses (`dead`).
fn handler() -> fleet_bus::consumer::MessageHandler {
    handler_fn(|d: Delivery| async move {
        match d.message.body.as_str() {
            "retry" if d.attempt == 1 => Err(HandlerError::transient("not yet")),
            "dead" => Err(HandlerError::permanent("never").with_label("refused")),
            _ => Ok(()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_with_ten_queues_holds_at_most_500_series() {
    let bus = EmbeddedBus::new();
    let probes = Probes::new(Duration::from_secs(30));
    let mut endpoints = Observability::start("127.0.0.1:0".parse().unwrap(), probes.clone())
        .await
        .unwrap();
    let consumers = Arc::new(Consumers::default());
    let mut watched = Vec::new();
    for i in 0..10 {
        let worker = format!("worker{i}");
        let queue = unique_name(&format!("series{i}"));
        let dead_letter_queue = declare_with_dlq(&bus, &queue, 3, Duration::from_secs(30)).await;
        let mut bodies = vec!["ok"; 8];
        bodies.extend(["retry", "dead"]);
        send_all(
            &bus,
            &queue,
            bodies.into_iter().map(OutgoingMessage::new).collect(),
        )
        .await;
        let handle = Consumer::new(bus.clone(), &queue)
            .configure(|c| {
                c.handler_name = worker.clone();
                c.wait_time = Duration::from_secs(1);
                c.retry = RetryPolicy {
                    base: Duration::from_millis(100),
                    max: Duration::from_secs(1),
                    jitter: Jitter::None,
                };
            })
            .handler(handler())
            .start()
            .await
            .unwrap();
        consumers.push(&worker, handle);
        watched.push(Watched {
            worker,
            queue,
            dead_letter_queue,
        });
    }
    probes.running(consumers.clone());
    let stats = QueueStatsConfig {
        interval: Duration::from_millis(200),
        oldest_message_target: Duration::from_secs(300),
    };
    endpoints.watch_queues(Arc::new(bus.clone()), watched.clone(), stats);
    wait_until(Duration::from_secs(30), || async {
        for w in &watched {
            let dead = counts(&bus, &w.dead_letter_queue).await;
            if counts(&bus, &w.queue).await != QueueCounts::default() || dead.visible != 1 {
                return false;
            }
        }
        true
    })
    .await;
    // One more read of the queue counts after the last settlement.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let text = scrape(endpoints.address).await;
    let n = series(&text);
    println!("one scrape of 10 consumers of 10 queues holds {n} series");
    assert!(n <= SERIES_BUDGET, "{n} series:\n{text}");
    for w in &watched {
        let worker = format!("worker=\"{}\"", w.worker);
        let value = |name: &str| sum(&text, name, &[&worker]);
        assert_eq!(value("fleet_dead_letter_messages"), 1.0, "{}", w.worker);
        assert_eq!(value("fleet_worker_ready"), 1.0, "{}", w.worker);
        assert_eq!(value("fleet_oldest_message_target_seconds"), 300.0);
        assert!(
            text.contains(&format!("fleet_worker_backlog_messages{{{worker}}} 0")),
            "{}",
            w.worker
        );
    }
    consumers.shutdown().await;
}

/// A deployment on moto running orders, analytics and email (memory mailer), serving its
/// endpoints on a free port.
async fn deploy(name: &str) -> Deployment {
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/templates");
    Deployment::provision_with(name, 8, |p| {
        format!(
            "[email]\nenabled = true\nqueue = \"{p}-email\"\nfrom = \"Fleet <fleet@example.com>\"\ntemplates = \"{templates}\"\nmailer = \"memory\"\nrate_per_second = 200.0\nburst = 10\n[email.consumer]\npollers = 1\nwait_time = \"2s\"\n{}",
            observe::section()
        )
    })
    .await
}

/// Starts `fleet run` with every enabled worker and waits until it is ready.
async fn start_ready(d: &Deployment) -> (Process, SocketAddr) {
    let mut process = d.start_logging(&[], 1, observe::LOG_ENDPOINTS);
    let address = observe::address(&mut process, Duration::from_secs(30));
    let started = Instant::now();
    loop {
        let ready = fleet_tests::http::get(address, "/readyz").await.unwrap();
        if ready.status == 200 {
            return (process, address);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn queues(d: &Deployment) -> Vec<String> {
    vec![d.orders(), d.analytics(), d.email()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_to_report_in_the_metrics_of_fleet_run_after_traffic() {
    promtool_binary();
    let d = deploy("promtool").await;
    let (process, address) = start_ready(&d).await;
    let scenario = Scenario::generate(21, 10, 40, 0.1);
    d.publish(&scenario).await;
    d.wait_until_drained(&queues(&d), DRAIN_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = scrape(address).await;
    let (ok, report) = check_metrics(&text);
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n{text}"
    );
    for expected in [
        "fleet_build_info{",
        "fleet_worker_backlog_messages{worker=\"orders\"}",
        "fleet_queue_visible_messages{",
        "fleet_dead_letter_messages{",
        "fleet_aws_requests_total{operation=\"sqs:ReceiveMessage\"}",
        "fleet_aws_requests_total{operation=\"dynamodb:TransactWriteItems\"}",
        "fleet_aws_requests_total{operation=\"sns:PublishBatch\"}",
        "fleet_email_sends_total{outcome=\"sent\"}",
        "fleet_email_send_rate_per_second ",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    println!(
        "{} series after {} events",
        series(&text),
        scenario.publish.len()
    );
    // The Grafana dashboard queries only metrics that this real scrape holds.
    let scraped = common::dashboard::scrape_metrics(&text);
    let missing: Vec<_> = common::dashboard::dashboard_metrics()
        .into_iter()
        .filter(|m| !scraped.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard metrics missing from a real scrape: {missing:?}\n{text}"
    );
    let ended = process.terminate(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_reads_the_processed_message_rate_of_fleet_run() {
    prometheus_binary();
    let d = deploy("prometheus").await;
    let (process, address) = start_ready(&d).await;
    let prometheus = Prometheus::scraping(address).await;
    let scenario = Scenario::generate(22, 30, 120, 0.1);

    // In waves, so messages flow while Prometheus scrapes every second.
    let mut rate_seen = None;
    for wave in scenario.publish.chunks(20) {
        let part = Scenario {
            publish: wave.to_vec(),
            ..scenario.clone()
        };
        d.publish(&part).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rate = prometheus
            .value("sum(rate(fleet_messages_settled_total[15s]))")
            .await;
        if rate.is_some_and(|r| r > 0.0) && rate_seen.is_none() {
            rate_seen = rate;
        }
    }
    d.wait_until_drained(&queues(&d), DRAIN_LIMIT).await;
    if rate_seen.is_none() {
        rate_seen = prometheus
            .value("sum(rate(fleet_messages_settled_total[15s]))")
            .await;
    }
    println!("settled messages per second, read from Prometheus while they flowed: {rate_seen:?}");
    assert!(rate_seen.is_some_and(|r| r > 0.0), "{}", prometheus.log());

    // Every order event published ends once: acknowledged or dead-lettered.
    let ended_query =
        "sum(fleet_messages_settled_total{worker=\"orders\",outcome=~\"succeeded|dead_lettered\"})";
    let sent = scenario.publish.len() as f64;
    let started = Instant::now();
    let mut last = None;
    while last != Some(sent) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Prometheus says {last:?} order messages ended, the test sent {sent}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = prometheus.value(ended_query).await;
    }
    assert_eq!(prometheus.value("up{job=\"fleet\"}").await, Some(1.0));

    let text = scrape(address).await;
    if let Some(path) = std::env::var_os("FLEET_SCRAPE_OUT") {
        std::fs::write(&path, &text).unwrap();
    }
    let ended = process.terminate(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
}
