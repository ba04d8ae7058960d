//! Chaos runs of the whole fleet (`common::chaos`): `fleet run` processes on moto and a real SMTP
//! server, SIGKILLed, rolled with SIGTERM and aborted at failpoints while producers publish, every
//! AWS call through a TCP fault proxy and an AWS error proxy, SMTP faults by address. The ledger
//! comes from independent counts (the table, the SMTP server's mail, the queues) and every
//! invariant must hold: nothing lost, no effect twice, the dead-letter queues holding exactly the
//! poison set, `delivery_unknown` only where a kill hit a send, every SIGTERM drained in time.
//!
//! A failing run prints its seed: `FLEET_FAULT_SEED=N` replays its schedule of faults.
//!
//! - the short run is part of the test command (about 2 minutes on 2 cores), which prints its
//!   ledger at the end (`target/tmp/chaos-ledger.md`);
//! - the long run is behind a flag (`--ignored`): `FLEET_CHAOS_MINUTES` (20) of faults, its
//!   ledger appended to `FLEET_CHAOS_LEDGER` when set. `docs/chaos.md` has the command and the
//!   recorded runs.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::chaos::{Plan, assert_invariants, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_loses_nothing_and_does_nothing_twice() {
    let plan = Plan::short(Plan::seed());
    let ledger = run(&plan).await;
    // For the test command to print after the tests (cargo shows a passing test's output only
    // with --nocapture).
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-ledger.md");
    std::fs::write(&path, ledger.markdown()).unwrap();
    assert_invariants(&ledger);
    // The run did what it claims: processes were killed and aborted at failpoints, one drained
    // on SIGTERM while the faults were on, every fault layer fired.
    let d = &ledger.disruptions;
    assert!(d.sigkills >= 3, "{} SIGKILLs", d.sigkills);
    assert!(!d.aborts.is_empty(), "no failpoint fired");
    assert!(d.sigterms_under_faults >= 1, "no SIGTERM under faults");
    assert!(!d.aws_errors.is_empty(), "no AWS error injected");
    assert!(d.toxics.len() >= 3, "{:?}", d.toxics);
    assert!(d.smtp_dropped_mid_data >= 1, "no SMTP connection dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the long chaos run (20 minutes): cargo test -p fleet-workers --test chaos -- --ignored --nocapture"]
async fn a_long_chaos_run_loses_nothing_and_does_nothing_twice() {
    let minutes = std::env::var("FLEET_CHAOS_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(20);
    let plan = Plan::long(Plan::seed(), minutes);
    let ledger = run(&plan).await;
    if let Ok(path) = std::env::var("FLEET_CHAOS_LEDGER") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(
            file,
            "\n### {minutes} minutes, seed {}\n\n{}",
            ledger.seed,
            ledger.markdown()
        )
        .unwrap();
    }
    assert_invariants(&ledger);
    if minutes >= 20 {
        assert!(
            ledger.disruptions.sigkills >= 15,
            "{} SIGKILLs",
            ledger.disruptions.sigkills
        );
    }
}
