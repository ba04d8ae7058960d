//! `fleet-bench`: the one benchmark command of issue 14 (run it through `scripts/bench`). It
//! measures Fleet on the embedded transport against a bare channel loop and a task spawned per
//! message, on the SQS wire against `sqs-consumer` (moto behind a counting proxy), the memory of
//! `fleet run` and of a drain, and publish → handler latency, all in one run, and prints one
//! markdown table with the goals of issue 14 beside the figures. `--smoke` runs everything with
//! tiny counts, to prove the command works (CI runs it through benches/tests/bench_smoke.rs); its figures mean nothing.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fleet_benches::run::{Plan, run};
use fleet_benches::sqs::Depth;
use fleet_benches::table::render;

#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Tiny counts everywhere: checks that every part runs, measures nothing worth reading.
    #[arg(long)]
    smoke: bool,
    /// Sections to run (comma-separated): embedded, latency, memory, sqs.
    #[arg(
        long,
        env = "FLEET_BENCH_ONLY",
        value_delimiter = ',',
        default_value = "embedded,latency,memory,sqs"
    )]
    only: Vec<String>,
    /// Embedded throughput: backlog sizes [default: 10000,100000; smoke 1000,2000].
    #[arg(long, env = "FLEET_BENCH_EMBEDDED", value_delimiter = ',')]
    embedded: Option<Vec<usize>>,
    /// Embedded throughput: rounds per size; the median is reported [default: 3; smoke 1].
    #[arg(long, env = "FLEET_BENCH_ROUNDS")]
    rounds: Option<usize>,
    /// SQS: messages per consumer [default: 2000; smoke 30].
    #[arg(long, env = "FLEET_BENCH_SQS_MESSAGES")]
    sqs_messages: Option<usize>,
    /// SQS: the feeder sends when fewer messages than this are visible [default: 100; smoke 10].
    #[arg(long, env = "FLEET_BENCH_DEPTH_LOW")]
    depth_low: Option<usize>,
    /// SQS: ... until about this many are [default: 200; smoke 20].
    #[arg(long, env = "FLEET_BENCH_DEPTH_HIGH")]
    depth_high: Option<usize>,
    /// Memory: the backlog the drain process loads and drains [default: 100000; smoke 2000].
    #[arg(long, env = "FLEET_BENCH_DRAIN_MESSAGES")]
    drain_messages: Option<usize>,
    /// Memory: how long `fleet run` idles before its RSS is read, ms [default: 3000; smoke 1000].
    #[arg(long, env = "FLEET_BENCH_IDLE_MS")]
    idle_ms: Option<u64>,
    /// Latency: messages published [default: 3000; smoke 100].
    #[arg(long, env = "FLEET_BENCH_LATENCY_MESSAGES")]
    latency_messages: Option<usize>,
    /// Latency: microseconds between two publishes [default: 1000].
    #[arg(long, env = "FLEET_BENCH_LATENCY_INTERVAL_US", default_value_t = 1000)]
    latency_interval_us: u64,
    /// The `fleet` binary [default: beside this one].
    #[arg(long, env = "FLEET_BENCH_FLEET")]
    fleet: Option<PathBuf>,
    /// moto_server, from the venv scripts/test and scripts/bench create [default: .venv/bin/moto_server].
    #[arg(long, env = "FLEET_MOTO_SERVER")]
    moto_server: Option<PathBuf>,
    /// node, for sqs-consumer.
    #[arg(long, env = "FLEET_NODE", default_value = "node")]
    node: PathBuf,
}

fn pick<T>(given: Option<T>, smoke: bool, small: T, full: T) -> T {
    given.unwrap_or(if smoke { small } else { full })
}

fn plan(args: Args) -> anyhow::Result<Plan> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("no repository above {}", env!("CARGO_MANIFEST_DIR")))?;
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("this binary has no directory"))?;
    let s = args.smoke;
    Ok(Plan {
        sections: args.only,
        embedded_sizes: pick(args.embedded, s, vec![1_000, 2_000], vec![10_000, 100_000]),
        rounds: pick(args.rounds, s, 1, 3),
        latency_messages: pick(args.latency_messages, s, 100, 3_000),
        latency_interval: Duration::from_micros(args.latency_interval_us),
        idle_settle: Duration::from_millis(pick(args.idle_ms, s, 1_000, 3_000)),
        drain_messages: pick(args.drain_messages, s, 2_000, 100_000),
        sqs_messages: pick(args.sqs_messages, s, 30, 2_000),
        depth: Depth {
            low: pick(args.depth_low, s, 10, 100),
            high: pick(args.depth_high, s, 20, 200),
        },
        fleet: args.fleet.unwrap_or_else(|| bin_dir.join("fleet")),
        moto_server: args
            .moto_server
            .unwrap_or_else(|| repo.join(".venv/bin/moto_server")),
        node: args.node,
        bin_dir,
        repo,
    })
}

/// One line about the machine: CPU model, cores, kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let smoke = args.smoke;
    let plan = plan(args)?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "fleet-bench: running {} ({profile} build); this takes a while",
        plan.sections.join(", ")
    );
    let results = run(&plan).await;
    let allocator = if cfg!(feature = "mimalloc") {
        "mimalloc"
    } else {
        "the system allocator"
    };
    println!(
        "fleet-bench{}, {profile} build, {allocator}, on {}",
        if smoke {
            " --smoke (tiny counts: the figures mean nothing)"
        } else {
            ""
        },
        machine()
    );
    println!();
    print!("{}", render(&results.rows));
    if results.problems.is_empty() {
        return Ok(());
    }
    println!();
    for p in &results.problems {
        println!("problem: {p}");
    }
    std::process::exit(1);
}
