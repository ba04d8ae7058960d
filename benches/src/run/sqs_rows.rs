//! The SQS section's rows: each contender's requests by operation, CPU per 1,000 messages (and
//! as a ratio to sqs-consumer in batch mode) and peak RSS.

use std::time::Duration;

use super::{Plan, Results};
use crate::moto::Moto;
use crate::sqs::{self, Contender, Depth, FleetContender, SqsConsumerContender, SqsRun};
use crate::table::{Row, at_most, megabytes};

pub(super) async fn sqs_rows(plan: &Plan, results: &mut Results) {
    const SECTION: &str = "sqs (moto)";
    let moto = match Moto::start(&plan.moto_server, &plan.repo) {
        Ok(m) => m,
        Err(e) => return results.failed(SECTION, "moto_server", &e),
    };
    let node_dir = plan.repo.join("benches/node");
    let version = sqs_consumer_version(&node_dir);
    let contenders: Vec<Box<dyn Contender>> = vec![
        Box::new(FleetContender {
            binary: plan.bin_dir.join("fleet-bench-sqs"),
        }),
        Box::new(SqsConsumerContender {
            node: plan.node.clone(),
            script: node_dir.join("sqs-consumer-bench.mjs"),
            mode: "message",
            version: version.clone(),
        }),
        Box::new(SqsConsumerContender {
            node: plan.node.clone(),
            script: node_dir.join("sqs-consumer-bench.mjs"),
            mode: "batch",
            version,
        }),
    ];
    let n = plan.sqs_messages;
    // moto serves about 200 messages a second at shallow depth; a tenth of that is a failure.
    let limit = Duration::from_secs(60) + Duration::from_millis(50 * n as u64);
    let mut runs: Vec<SqsRun> = vec![];
    for c in &contenders {
        match sqs::measure(&moto.endpoint, c.as_ref(), n, plan.depth, limit).await {
            Ok(run) => runs.push(run),
            Err(e) => results.failed(SECTION, &c.name(), &e),
        }
    }
    let batch_cpu = runs
        .iter()
        .find(|r| r.name.ends_with("handleMessageBatch"))
        .map(|r| r.outcome.cpu.as_secs_f64());
    for run in &runs {
        sqs_run_rows(run, n, batch_cpu, plan.depth, results);
    }
}

fn sqs_consumer_version(node_dir: &std::path::Path) -> String {
    std::fs::read_to_string(node_dir.join("node_modules/sqs-consumer/package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "(not installed)".to_owned())
}

/// The share of each operation, per message: receives, deletes, visibility changes, the rest.
fn by_operation(run: &SqsRun, handled: u64) -> String {
    let per = |ops: &[&str]| {
        let c: u64 = ops
            .iter()
            .map(|o| run.counts.requests.get(*o).copied().unwrap_or(0))
            .sum();
        c as f64 / handled.max(1) as f64
    };
    let known = [
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    ];
    let other: Vec<String> = run
        .counts
        .requests
        .iter()
        .filter(|(op, _)| !known.contains(&op.as_str()))
        .map(|(op, c)| format!("{op} {c}"))
        .collect();
    let other_count: u64 = run
        .counts
        .requests
        .iter()
        .filter(|(op, _)| !known.contains(&op.as_str()))
        .map(|(_, c)| c)
        .sum();
    format!(
        "Receive {:.3} · Delete {:.3} · DeleteBatch {:.3} · ChangeVisibility {:.3} · ChangeVisibilityBatch {:.3} · other {:.3}{}; {} messages in receive answers; {} TCP connections",
        per(&["ReceiveMessage"]),
        per(&["DeleteMessage"]),
        per(&["DeleteMessageBatch"]),
        per(&["ChangeMessageVisibility"]),
        per(&["ChangeMessageVisibilityBatch"]),
        other_count as f64 / handled.max(1) as f64,
        if other.is_empty() {
            String::new()
        } else {
            format!(" ({})", other.join(", "))
        },
        run.counts.messages_received,
        run.counts.connections,
    )
}

fn sqs_run_rows(
    run: &SqsRun,
    n: usize,
    batch_cpu: Option<f64>,
    depth: Depth,
    results: &mut Results,
) {
    const SECTION: &str = "sqs (moto)";
    let (received, handled) = (run.reported("received"), run.reported("handled"));
    results.check_counts(&run.name, n as u64, received, handled);
    if run.fed != n as u64 || run.counts.messages_received != n as u64 {
        results.problems.push(format!(
            "{}: fed {}, {} messages in receive answers, expected {n}",
            run.name, run.fed, run.counts.messages_received
        ));
    }
    let is_fleet = run.name.starts_with("Fleet");
    let requests = run.counts.total() as f64 / handled.max(1) as f64;
    let cpu = run.outcome.cpu.as_secs_f64();
    let ratio = batch_cpu.map(|b| cpu / b.max(1e-9));
    let subject = |what: &str| {
        format!(
            "{}: {what}, {n} msgs, depth {}–{}",
            run.name, depth.low, depth.high
        )
    };
    results.rows.push(Row {
        section: SECTION,
        subject: subject("requests"),
        counts: Some((received, handled)),
        result: format!("{requests:.3} requests/msg"),
        detail: by_operation(run, handled),
        goal: if is_fleet {
            "≤ 0.205 requests/msg".to_owned()
        } else {
            String::new()
        },
        verdict: if is_fleet {
            at_most(requests, 0.205, "requests/msg")
        } else {
            String::new()
        },
    });
    results.rows.push(Row {
        section: SECTION,
        subject: subject("CPU"),
        counts: Some((received, handled)),
        result: format!(
            "{:.3} CPU-s / 1,000 msgs",
            1000.0 * cpu / handled.max(1) as f64
        ),
        detail: ratio
            .map(|r| {
                format!("{r:.2}× sqs-consumer handleMessageBatch; {cpu:.2} CPU-s from go to done")
            })
            .unwrap_or_else(|| format!("{cpu:.2} CPU-s from go to done")),
        goal: if is_fleet {
            "≤ 0.10× sqs-consumer handleMessageBatch".to_owned()
        } else {
            String::new()
        },
        verdict: match (is_fleet, ratio) {
            (true, Some(r)) => at_most(r, 0.10, "×"),
            _ => String::new(),
        },
    });
    results.rows.push(Row {
        section: SECTION,
        subject: subject("peak RSS"),
        counts: Some((received, handled)),
        result: format!("{} (VmHWM)", megabytes(run.outcome.peak_rss)),
        ..Row::default()
    });
}
