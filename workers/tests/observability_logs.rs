//! The logs of `fleet run` end to end on moto, in JSON: every line on stderr is one JSON object,
//! and every line about a message (one with a `message_id`) carries its queue, worker, attempt
//! and trace id, and its correlation id when the message has one. The same run exports its
//! `process` spans over OTLP/HTTP JSON to a server in the test, with the trace ids the log lines
//! name.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fleet_run::Deployment;
use fleet_bus::producer::BatchProducer;
use fleet_bus::{OutgoingMessage, Transport};
use fleet_schemas::{OrderPlaced, Producer};
use serde_json::{Map, Value};

/// Every message-scoped line the engine and the workers write, successes included.
const LOG_LEVEL: &str = "info,fleet_workers=debug,fleet_bus=debug";

/// The configuration beyond the harness's: the email worker on the memory mailer, and spans
/// exported to `otlp`.
fn extra_sections(p: &str, otlp: &str) -> String {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/templates");
    format!(
        r#"
[email]
enabled = true
queue = "{p}-email"
from = "Fleet <fleet-{p}@example.com>"
templates = "{}"
mailer = "memory"
[email.consumer]
pollers = 1
wait_time = "2s"

[observability.tracing]
otlp_endpoint = "{otlp}"
otlp_protocol = "http_json"
"#,
        templates.display()
    )
}

/// A one-request-at-a-time HTTP server that answers 200 `{}` and keeps each request body.
fn otlp_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            kept.lock().unwrap().push(String::from_utf8(body).unwrap());
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    (address, bodies)
}

fn placed(order: &str) -> OrderPlaced {
    serde_json::from_value(serde_json::json!({
        "order_id": order, "customer_id": "c-1", "currency": "EUR", "total_cents": 900,
        "customer_email": "c-1@example.com",
        "items": [{"sku": "TEE", "quantity": 1, "unit_price_cents": 900}],
    }))
    .unwrap()
}

/// The trace ids of every span the OTLP requests carried.
fn exported_trace_ids(bodies: &[String]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for body in bodies {
        let body: Value = serde_json::from_str(body).unwrap();
        for resource in body["resourceSpans"].as_array().unwrap() {
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    ids.insert(span["traceId"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_json_and_every_message_line_says_which_message_and_trace() {
    let (otlp, bodies) = otlp_server();
    let d = Deployment::provision_with("logs", 3, |p| extra_sections(p, &otlp)).await;
    let fleet = d.start_logging(&[], 1, LOG_LEVEL);

    // Sent straight to the orders queue, so the test knows each message's id: two orders with
    // a correlation id, one without, and a body that is not JSON (dead-lettered).
    let orders = d.transport.queue(&d.orders()).await.unwrap().sender();
    let producer = Producer::new(
        BatchProducer::to_queue(d.orders(), orders.clone()),
        "checkout",
    );
    let mut correlation: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (order, id) in [
        ("o-1", Some("checkout-1")),
        ("o-2", Some("checkout-2")),
        ("o-3", None),
    ] {
        let mut envelope = producer.envelope(placed(order));
        if let Some(id) = id {
            envelope = envelope.with_correlation_id(id);
        }
        let receipt = orders
            .send(producer.message(&envelope).unwrap())
            .await
            .unwrap();
        correlation.insert(receipt.message_id, id.map(str::to_owned));
    }
    let bad = orders.send(OutgoingMessage::new("not json")).await.unwrap();
    correlation.insert(bad.message_id.clone(), None);

    let queues = [d.orders(), d.email(), d.analytics()];
    d.wait_until_drained(&queues, Duration::from_secs(120))
        .await;
    let ended = fleet.terminate(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);

    let mut lines = Vec::new();
    for (n, line) in ended.stderr.lines().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => lines.push(object),
            _ => panic!("line {} is not a JSON object: {line}", n + 1),
        }
    }
    let about_messages: Vec<&Map<String, Value>> = lines
        .iter()
        .filter(|l| l.contains_key("message_id"))
        .collect();
    for line in &about_messages {
        for key in ["queue", "worker", "attempt", "trace_id"] {
            assert!(
                line.contains_key(key),
                "no {key} on {}",
                Value::Object((*line).clone())
            );
        }
    }
    // Lines of the orders worker about the messages the test sent: their own correlation id.
    let mut seen = BTreeSet::new();
    for line in &about_messages {
        let id = line["message_id"].as_str().unwrap();
        let Some(expected) = correlation.get(id) else {
            continue;
        };
        seen.insert(id.to_owned());
        let got = line.get("correlation_id").and_then(Value::as_str);
        assert_eq!(
            got,
            expected.as_deref(),
            "{}",
            Value::Object((*line).clone())
        );
    }
    assert_eq!(
        seen.len(),
        correlation.len(),
        "a line about each message sent"
    );
    // The email worker's messages were caused by an order: each has a correlation id.
    for line in about_messages.iter().filter(|l| l["worker"] == "email") {
        assert!(
            line.contains_key("correlation_id"),
            "{}",
            Value::Object((*line).clone())
        );
    }
    let dead = about_messages
        .iter()
        .find(|l| l["message_id"] == bad.message_id.as_str() && l["level"] == "WARN");
    assert!(dead.is_some(), "the bad message's dead-letter line");

    // The spans went to the collector, in the traces the lines name.
    let logged: BTreeSet<String> = about_messages
        .iter()
        .filter(|l| l["worker"] == "orders")
        .map(|l| l["trace_id"].as_str().unwrap().to_owned())
        .collect();
    let exported = exported_trace_ids(&bodies.lock().unwrap());
    assert!(!logged.is_empty());
    assert!(
        logged.is_subset(&exported),
        "logged {logged:?}, exported {exported:?}"
    );
}
