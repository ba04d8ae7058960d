//! The whole `fleet-bench` run: every section in turn, each turned into rows of the table. A
//! section that fails becomes a row saying so, and the run goes on; counts that do not add up
//! are reported as problems (the command then exits with status 1).

use std::path::PathBuf;
use std::time::Duration;

use crate::child::Measured;
use crate::embedded::{self, Throughput};
use crate::latency::{self, Latencies};
use crate::memory;
use crate::sqs::Depth;
use crate::table::{Row, at_least, at_most, both, figure, megabytes};

mod sqs_rows;

/// What to measure, and with what.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The repository (for `deploy/fleet.toml`, moto's launcher and the node script).
    pub repo: PathBuf,
    /// Sections to run: `embedded`, `latency`, `memory`, `sqs`.
    pub sections: Vec<String>,
    /// Embedded throughput: backlog sizes.
    pub embedded_sizes: Vec<usize>,
    /// Embedded throughput: rounds per size (the median is reported).
    pub rounds: usize,
    /// Latency: messages published.
    pub latency_messages: usize,
    /// Latency: the pause between two publishes.
    pub latency_interval: Duration,
    /// Memory: how long `fleet run` idles before it is measured.
    pub idle_settle: Duration,
    /// Memory: the backlog the drain process loads and drains.
    pub drain_messages: usize,
    /// SQS: messages per consumer.
    pub sqs_messages: usize,
    /// SQS: the depth the feeder keeps.
    pub depth: Depth,
    /// The `fleet` binary.
    pub fleet: PathBuf,
    /// The directory holding `fleet-bench-sqs` and `fleet-bench-drain`.
    pub bin_dir: PathBuf,
    /// moto_server (the venv's; its `python` runs moto's launcher).
    pub moto_server: PathBuf,
    /// node, for sqs-consumer.
    pub node: PathBuf,
}

/// The rows, and what did not add up.
#[derive(Debug, Default)]
pub struct Results {
    /// The table's rows.
    pub rows: Vec<Row>,
    /// Failures and counts that do not add up.
    pub problems: Vec<String>,
}

impl Results {
    pub(crate) fn failed(&mut self, section: &'static str, subject: &str, e: &anyhow::Error) {
        self.problems.push(format!("{section} / {subject}: {e:#}"));
        self.rows.push(Row {
            section,
            subject: subject.to_owned(),
            result: format!("failed: {e:#}"),
            ..Row::default()
        });
    }

    pub(crate) fn check_counts(&mut self, what: &str, expected: u64, received: u64, handled: u64) {
        if received != expected || handled != expected {
            self.problems.push(format!(
                "{what}: expected {expected}, received {received}, handled {handled}"
            ));
        }
    }
}

impl Plan {
    fn runs(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }
}

/// Runs every section the plan names, in the order embedded, latency, memory, sqs (the CPU-bound
/// in-process measurements first, while nothing else of the run is alive).
pub async fn run(plan: &Plan) -> Results {
    let mut results = Results::default();
    if plan.runs("embedded") {
        embedded_rows(plan, &mut results).await;
    }
    if plan.runs("latency") {
        latency_rows(plan, &mut results).await;
    }
    if plan.runs("memory") {
        memory_rows(plan, &mut results).await;
    }
    if plan.runs("sqs") {
        sqs_rows::sqs_rows(plan, &mut results).await;
    }
    results
}

fn median(mut runs: Vec<Throughput>) -> Option<Throughput> {
    runs.sort_by_key(|a| a.elapsed);
    runs.get(runs.len() / 2).copied()
}

async fn embedded_rows(plan: &Plan, results: &mut Results) {
    const SECTION: &str = "embedded";
    for &n in &plan.embedded_sizes {
        let (mut channel, mut spawn, mut fleet) = (vec![], vec![], vec![]);
        let mut failure = None;
        for _ in 0..plan.rounds.max(1) {
            channel.push(embedded::channel_loop(n).await);
            spawn.push(embedded::spawn_per_message(n).await);
            match embedded::fleet_consumer(n).await {
                Ok((t, _)) => fleet.push(t),
                Err(e) => failure = Some(e),
            }
        }
        let subject = |who: &str| format!("{who}, {n} msgs, no-op handler");
        let median_of = |runs: &[Throughput]| median(runs.to_vec());
        let (Some(channel), Some(spawn)) = (median_of(&channel), median_of(&spawn)) else {
            continue;
        };
        for (who, t) in [("bare channel loop", channel), ("spawn per message", spawn)] {
            results.check_counts(&subject(who), n as u64, t.received, t.handled);
            results.rows.push(Row {
                section: SECTION,
                subject: subject(who),
                counts: Some((t.received, t.handled)),
                result: format!("{} msg/s", figure(t.per_second())),
                detail: format!("median of {}", plan.rounds.max(1)),
                ..Row::default()
            });
        }
        let who = "Fleet Consumer, defaults";
        match (failure, median_of(&fleet)) {
            (None, Some(t)) => {
                results.check_counts(&subject(who), n as u64, t.received, t.handled);
                let rate = t.per_second();
                let share = rate / spawn.per_second();
                results.rows.push(Row {
                    section: SECTION,
                    subject: subject(who),
                    counts: Some((t.received, t.handled)),
                    result: format!("{} msg/s", figure(rate)),
                    detail: format!(
                        "{:.0} % of spawn per message; median of {}: last handler at {:.1} ms, queue empty (deletes applied) at {:.1} ms",
                        100.0 * share,
                        plan.rounds.max(1),
                        t.last_handled.as_secs_f64() * 1e3,
                        t.elapsed.as_secs_f64() * 1e3,
                    ),
                    goal: "≥ 1,000,000 msg/s and ≥ 60 % of spawn per message".to_owned(),
                    verdict: both(
                        &at_least(rate, 1e6, "msg/s"),
                        &at_least(100.0 * share, 60.0, "points"),
                    ),
                });
            }
            (e, _) => {
                let e = e.unwrap_or_else(|| anyhow::anyhow!("no run finished"));
                results.failed(SECTION, &subject(who), &e);
            }
        }
    }
}

fn quantiles(l: &Latencies) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "p50 {} µs, p99 {} µs",
        figure(us(l.quantile(0.5))),
        figure(us(l.quantile(0.99)))
    )
}

async fn latency_rows(plan: &Plan, results: &mut Results) {
    const SECTION: &str = "latency";
    let (n, every) = (plan.latency_messages, plan.latency_interval);
    let subject = |who: &str| {
        format!(
            "{who}, publish → handler, {n} msgs, one every {} µs",
            every.as_micros()
        )
    };
    let spawn = latency::spawn_per_message(n, every).await;
    let fleet = latency::fleet(n, every).await;
    let spawn_p99 = match &spawn {
        Ok(l) => {
            results.check_counts(
                &subject("spawn per message"),
                n as u64,
                l.received,
                l.handled,
            );
            results.rows.push(Row {
                section: SECTION,
                subject: subject("spawn per message"),
                counts: Some((l.received, l.handled)),
                result: quantiles(l),
                ..Row::default()
            });
            Some(l.quantile(0.99))
        }
        Err(e) => {
            results.failed(SECTION, &subject("spawn per message"), e);
            None
        }
    };
    match &fleet {
        Ok(l) => {
            results.check_counts(
                &subject("Fleet Consumer, defaults"),
                n as u64,
                l.received,
                l.handled,
            );
            let ratio =
                spawn_p99.map(|s| l.quantile(0.99).as_secs_f64() / s.as_secs_f64().max(1e-9));
            results.rows.push(Row {
                section: SECTION,
                subject: subject("Fleet Consumer, defaults"),
                counts: Some((l.received, l.handled)),
                result: quantiles(l),
                detail: ratio
                    .map(|r| format!("p99 {r:.2}× spawn per message's"))
                    .unwrap_or_default(),
                goal: "p99 ≤ 1.1× spawn per message's".to_owned(),
                verdict: ratio.map(|r| at_most(r, 1.1, "×")).unwrap_or_default(),
            });
        }
        Err(e) => results.failed(SECTION, &subject("Fleet Consumer, defaults"), e),
    }
}

async fn memory_rows(plan: &Plan, results: &mut Results) {
    const SECTION: &str = "memory";
    let subject = format!(
        "fleet run, three workers, embedded transport, idle {} s",
        plan.idle_settle.as_secs_f64()
    );
    match memory::fleet_run_idle(&plan.fleet, &plan.repo, plan.idle_settle).await {
        Ok(u) => results.rows.push(Row {
            section: SECTION,
            subject,
            result: format!("{} RSS", megabytes(u.rss)),
            detail: format!("peak so far {}", megabytes(u.peak_rss)),
            goal: "≤ 25 MB".to_owned(),
            verdict: at_most(u.rss as f64 / 1e6, 25.0, "MB"),
            ..Row::default()
        }),
        Err(e) => results.failed(SECTION, &subject, &e),
    }
    let n = plan.drain_messages;
    let subject =
        format!("drain of a {n}-message embedded backlog, Fleet Consumer, defaults, own process");
    match drain_peak(plan, n).await {
        Ok((o, received, handled, elapsed_ms)) => {
            results.check_counts(&subject, n as u64, received, handled);
            results.rows.push(Row {
                section: SECTION,
                subject,
                counts: Some((received, handled)),
                result: format!("{} peak RSS (VmHWM)", megabytes(o.peak_rss)),
                detail: format!(
                    "loaded and drained in {} s",
                    figure(elapsed_ms as f64 / 1e3)
                ),
                goal: "≤ 100 MB".to_owned(),
                verdict: at_most(o.peak_rss as f64 / 1e6, 100.0, "MB"),
            });
        }
        Err(e) => results.failed(SECTION, &subject, &e),
    }
}

async fn drain_peak(
    plan: &Plan,
    n: usize,
) -> anyhow::Result<(crate::child::Outcome, u64, u64, u64)> {
    let mut command = tokio::process::Command::new(plan.bin_dir.join("fleet-bench-drain"));
    command.args(["-n", &n.to_string()]);
    let mut child = Measured::start("fleet-bench-drain", command, Duration::from_secs(60)).await?;
    let o = child.run(Duration::from_secs(600)).await?;
    child.finish().await?;
    let get = |k: &str| {
        o.result
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let (received, handled, elapsed) = (get("received"), get("handled"), get("elapsed_ms"));
    Ok((o, received, handled, elapsed))
}
