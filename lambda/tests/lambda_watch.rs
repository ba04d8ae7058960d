//! The `fleet-lambda` binary (the orders worker) on the Lambda Runtime API that `cargo lambda
//! watch` emulates, invoked through it with SQS events, against moto.
//!
//! `cargo lambda watch --only-lambda-apis` serves the Runtime API and the invoke endpoint; the
//! test starts the already built binary against it (letting `watch` run `cargo run` itself would
//! rebuild the workspace with its own flags). The tool comes from PyPI's `cargo-lambda`, which
//! `./scripts/test` installs into `.venv` and names in `FLEET_CARGO_LAMBDA`; without it this
//! test fails, naming the install step.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cargo_lambda, drain, event, reasons, record};
use fleet_bus::Topology;
use fleet_bus::aws::SqsTransport;
use fleet_tests::moto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills its process when dropped, so a failing test leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The deployment's topology with every name suffixed (so tests share moto), provisioned.
async fn provision(suffix: &str) -> SqsTransport {
    let mut t = Topology::from_toml(fleet_workers::demo::TOPOLOGY).unwrap();
    let rename = |n: &mut String| *n = format!("{n}-{suffix}");
    for q in &mut t.queues {
        rename(&mut q.name);
        if let Some(dl) = &mut q.dead_letter {
            rename(&mut dl.queue);
        }
    }
    for topic in &mut t.topics {
        rename(&mut topic.name);
        for s in &mut topic.subscriptions {
            rename(&mut s.queue);
        }
    }
    for table in &mut t.tables {
        rename(&mut table.name);
    }
    let sdk = moto::sdk_config().await;
    let transport = SqsTransport::new(&sdk);
    fleet_bus::provision(&transport, &t).await.unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    fleet_bus::aws::table::provision_tables(&dynamodb, &t)
        .await
        .unwrap();
    transport
}

async fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Invokes the function through the emulator's invoke endpoint; the function's answer.
async fn invoke(port: u16, payload: &serde_json::Value) -> serde_json::Value {
    let body = payload.to_string();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "POST /2015-03-31/functions/_/invocations HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_string(&mut answer))
        .await
        .expect("the invocation answers within 60 s")
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

fn envelope(id: &str, event_type: &str, payload: serde_json::Value) -> String {
    serde_json::json!({
        "id": id, "type": event_type, "version": 2, "occurred_at": "2026-11-26T15:00:00Z",
        "producer": "checkout", "payload": payload,
    })
    .to_string()
}

fn placed(order: &str) -> String {
    envelope(
        &format!("{order}-placed"),
        "order.placed",
        serde_json::json!({"order_id": order, "customer_id": "c-1", "currency": "EUR", "total_cents": 1000,
            "items": [{"sku": "TEE", "quantity": 1, "unit_price_cents": 1000}]}),
    )
}

fn paid(order: &str) -> String {
    envelope(
        &format!("{order}-paid"),
        "order.paid",
        serde_json::json!({"order_id": order, "payment_id": format!("pay-{order}"), "amount_cents": 1000, "currency": "EUR"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_worker_answers_sqs_events_through_cargo_lambda_watch() {
    let tool = cargo_lambda();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let transport = provision(&suffix).await;
    let (queue, dlq) = (
        format!("fleet-orders-{suffix}"),
        format!("fleet-orders-dlq-{suffix}"),
    );
    let dir = std::env::temp_dir().join(format!("fleet-lambda-{suffix}"));
    std::fs::create_dir_all(&dir).unwrap();

    let port = free_port();
    let watch_log = std::fs::File::create(dir.join("watch.log")).unwrap();
    let _watch = Killed(
        Command::new(&tool)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string(), "--timeout", "60"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdin(Stdio::null())
            .stdout(watch_log.try_clone().unwrap())
            .stderr(watch_log)
            .spawn()
            .expect("start cargo lambda watch"),
    );
    wait_for_port(port, "cargo lambda watch").await;

    let function_log = dir.join("function.log");
    let _function = Killed(
        Command::new(env!("CARGO_BIN_EXE_fleet-lambda"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("FLEET_LAMBDA_WORKER", "orders")
            .env("FLEET__ORDERS__QUEUE", &queue)
            .env("FLEET__EVENTS_TOPIC", format!("fleet-events-{suffix}"))
            .env("FLEET__TABLE", format!("fleet-{suffix}"))
            .env("AWS_ENDPOINT_URL", &moto::moto().endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "fleet-test")
            .env("AWS_SECRET_ACCESS_KEY", "fleet-test")
            .env_remove("AWS_PROFILE")
            .env_remove("FLEET_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&function_log).unwrap())
            .stderr(std::fs::File::create(dir.join("function.err")).unwrap())
            .spawn()
            .expect("start fleet-lambda"),
    );

    // A mixed batch: applied, too early (its order does not exist yet: retried), not JSON
    // (dead-lettered), and a late attempt of a too-early event at its last receive (10).
    let first = event(vec![
        record("m-1", &placed("o-1"), 1, None, &queue),
        record("m-2", &paid("o-2"), 1, None, &queue),
        record("m-3", "{not json", 1, None, &queue),
        record("m-4", &paid("o-3"), 10, None, &queue),
    ]);
    let answer = invoke(port, &first).await;
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    );
    // A redelivery of the applied event, then the payment: both succeed, nothing more failed.
    for payload in [
        event(vec![record("m-1", &placed("o-1"), 2, None, &queue)]),
        event(vec![record("m-5", &paid("o-1"), 1, None, &queue)]),
    ] {
        assert_eq!(
            invoke(port, &payload).await,
            serde_json::json!({"batchItemFailures": []})
        );
    }

    let dead = reasons(&drain(&transport, &dlq).await);
    let kinds: Vec<(&str, u32)> = dead
        .iter()
        .map(|(_, r)| (r.kind.as_str(), r.attempt))
        .collect();
    assert_eq!(
        kinds,
        [("order_not_found", 10), ("invalid_json", 1)],
        "{dead:?}"
    );
    assert!(
        dead.iter()
            .all(|(_, r)| r.handler == "orders" && r.queue == queue),
        "{dead:?}"
    );

    // Built once: one environment for the three invocations, and no queue lookups after it.
    let log = std::fs::read_to_string(&function_log).unwrap();
    // Metrics: one CloudWatch EMF document per invocation, with its outcome counts.
    let emf: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect();
    let counts: Vec<(u64, u64, u64, u64)> = emf
        .iter()
        .map(|d| {
            assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Fleet");
            assert_eq!(d["Worker"], "orders");
            let n = |k: &str| d[k].as_u64().unwrap();
            (
                n("MessagesReceived"),
                n("MessagesAcked"),
                n("MessagesRetried"),
                n("MessagesDeadLettered"),
            )
        })
        .collect();
    assert_eq!(counts, [(4, 1, 1, 2), (1, 1, 0, 0), (1, 1, 0, 0)], "{log}");
    let done: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "invocation done")
        .collect();
    assert_eq!(done.len(), 3, "{log}");
    for (i, line) in done.iter().enumerate() {
        assert_eq!(line["fields"]["invocation"], i + 1, "{log}");
        assert_eq!(line["fields"]["environments_built"], 1, "{log}");
        assert_eq!(
            line["fields"]["queue_lookups"], done[0]["fields"]["queue_lookups"],
            "{log}"
        );
    }
}
