//! `fleet run` when AWS is unreachable as it starts (through `fleet_tests::faults::tcp`'s proxy):
//!
//! - connections refused: the start is tried again (a transient error) until AWS answers, then
//!   the workers run, instead of the process exiting on a network blip at boot;
//! - a blackhole (connections accepted, nothing answered): every call is cut by the attempt
//!   timeout (`fleet_bus::aws::ATTEMPT_TIMEOUT`, 10 s), where it used to hang for good (the SDK
//!   sets no such limit by default), and the start is tried again;
//! - SSM failing (500s, through `fleet_tests::faults::aws`) when the email worker reads its SMTP
//!   password: retried like any transient error, not a configuration error that exits.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::fleet_run::{Deployment, smtp_email_section};
use common::orders::{env, message, placed};
use fleet_bus::Transport;
use fleet_bus::producer::BatchProducer;
use fleet_tests::faults::aws::{AwsError, AwsErrorProxy};
use fleet_tests::faults::tcp::{TcpFaultProxy, Toxic};
use fleet_tests::smtp::SmtpServer;

const DRAIN_LIMIT: Duration = Duration::from_secs(60);
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// Starts the orders worker through a proxy showing `toxic` for `outage`, then publishes an
/// order and checks it was handled and the process drains; returns its logs.
async fn start_through(name: &str, toxic: Toxic, outage: Duration) -> String {
    let d = Deployment::provision(name, 5).await;
    let proxy = TcpFaultProxy::start_for(&fleet_tests::moto::moto().endpoint, 1)
        .await
        .unwrap();
    proxy.set(toxic);
    let endpoint = proxy.endpoint();
    let mut running = d.start_with_env(&["orders"], 0, &[("AWS_ENDPOINT_URL", &endpoint)]);
    tokio::time::sleep(outage).await;
    assert!(
        running.running(),
        "fleet run gave up while AWS was unreachable:\n{}",
        running.logs()
    );
    proxy.set(Toxic::None);
    let came_back = Instant::now();

    let envelope = env("placed-1", 0, placed("o-1", "c-1", 1000, false));
    let topic = d.transport.topic(&d.topic()).await.unwrap();
    let report = BatchProducer::to_topic(d.topic(), topic)
        .send_all(vec![message(&envelope)], |_| {})
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    d.wait_until_drained(&[d.orders()], DRAIN_LIMIT).await;
    println!(
        "{name}: handled {:?} after AWS came back",
        came_back.elapsed()
    );
    let ended = tokio::task::spawn_blocking(move || running.terminate(EXIT_LIMIT))
        .await
        .unwrap();
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
    assert!(ended.stdout.contains("received 1 |"), "{}", ended.stdout);
    ended.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_while_aws_refuses_connections_waits_for_it() {
    let logs = start_through("start-refused", Toxic::Refuse, Duration::from_secs(4)).await;
    assert!(
        logs.contains("starting failed on a transient error; trying again"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_into_a_blackhole_times_out_and_tries_again() {
    // The call caught in the blackhole is cut after the attempt timeout and tried again (by the
    // SDK, or by the start's own retry): the worker runs within the drain limit.
    start_through("start-blackhole", Toxic::Blackhole, Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssm_outage_while_the_email_worker_starts_is_waited_out() {
    let server = SmtpServer::start("fleet", "start-Pa55word");
    let d = Deployment::write("start-ssm", 5, |p| {
        smtp_email_section(p, &server, "fleet", "10s")
    })
    .await;
    d.provision_topology().await;
    d.put_smtp_password("start-Pa55word").await;
    let proxy = AwsErrorProxy::start(&fleet_tests::moto::moto().endpoint, 1)
        .await
        .unwrap();
    proxy.inject("GetParameter", 1.0, AwsError::InternalError);
    let endpoint = proxy.endpoint().to_owned();
    let mut running = d.start_with_env(&["email"], 0, &[("AWS_ENDPOINT_URL", &endpoint)]);
    let began = Instant::now();
    while proxy.injected("GetParameter") < 4 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "SSM was never asked again:\n{}",
            running.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        running.running(),
        "fleet run gave up while SSM failed:\n{}",
        running.logs()
    );
    proxy.clear();

    let id = d.publish_email_request("ada@example.com").await;
    let accepted = server.wait_for(1, DRAIN_LIMIT);
    assert_eq!(accepted[0].event_id.as_deref(), Some(id.as_str()));
    let ended = tokio::task::spawn_blocking(move || running.terminate(EXIT_LIMIT))
        .await
        .unwrap();
    assert_eq!(ended.code, Some(0), "{}\n{}", ended.stdout, ended.stderr);
    assert!(
        ended
            .stderr
            .contains("starting failed on a transient error; trying again")
            && ended.stderr.contains("GetParameter"),
        "{}",
        ended.stderr
    );
}
