//! Stress reruns, after Watermill's `TestPubSubStressTest`: every case of a suite runs
//! `FLEET_STRESS` times at once, each run against its own fresh bus or store, to shake out races
//! that one run at a time hides. All failures are collected and named by case and run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use fleet_bus::scenarios::Case;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How many times each case runs when `FLEET_STRESS` is unset: two copies of every case at once
/// (each on its own bus or store, sharing the runtime, the emulator and the engine's code) is the
/// least that runs every case under the load of the others and of itself, and keeps the normal
/// test command's cost to about one extra pass of the slowest scenario.
pub const DEFAULT_RUNS: usize = 2;

/// A run that has not finished by then is reported as hung instead of hanging the test. Far
/// above the slowest case (a retention scenario waits 61 s of paused time).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The number of runs per case: `FLEET_STRESS`, or [`DEFAULT_RUNS`].
///
/// # Panics
///
/// When `FLEET_STRESS` is not a positive whole number.
pub fn runs() -> usize {
    match std::env::var("FLEET_STRESS") {
        Err(_) => DEFAULT_RUNS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("FLEET_STRESS={v:?}: expected a positive whole number of runs"),
        },
    }
}

/// Runs every case of `suite` [`runs()`] times at once, each run on a fresh `T` from `setup`,
/// prints how many runs of how many cases took how long, and panics naming every failed case
/// and run index.
///
/// Runs are spawned on the current runtime: on a paused clock they share it, which is how the
/// paused-clock scenarios run in their own tests too (time moves only when every task waits).
pub async fn stress<T, S, F>(suite: &str, cases: Vec<Case<T>>, setup: S)
where
    T: Send + 'static,
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = T> + Send,
{
    let runs = runs();
    let started = (std::time::Instant::now(), Instant::now());
    let mut tasks = JoinSet::new();
    let mut which = HashMap::new();
    for run in 0..runs {
        for case in &cases {
            let (case, setup) = (*case, setup.clone());
            let task = tasks.spawn(tokio::time::timeout(RUN_LIMIT, async move {
                (case.run)(setup().await).await;
            }));
            which.insert(task.id(), (case.name, run));
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, why) = match joined {
            Ok((_, Ok(()))) => continue,
            Ok((id, Err(_))) => (id, format!("did not finish within {RUN_LIMIT:?}")),
            Err(e) if e.is_panic() => (e.id(), panic_message(e.into_panic())),
            Err(e) => (e.id(), e.to_string()),
        };
        let (name, run) = which[&id];
        failures.push((name, run, why));
    }
    let (wall, clock) = (started.0.elapsed(), started.1.elapsed());
    // On a paused clock the runs' own time passes much faster than the wall's.
    let paused = if clock > wall + Duration::from_secs(1) {
        format!(" ({clock:.0?} on the paused clock)")
    } else {
        String::new()
    };
    println!(
        "{suite}: {runs} runs of {} cases ({} in all, at once) in {wall:.1?}{paused}",
        cases.len(),
        runs * cases.len()
    );
    if !failures.is_empty() {
        failures.sort();
        let mut report = format!(
            "{suite}: {} of {} runs failed:",
            failures.len(),
            runs * cases.len()
        );
        for (name, run, why) in &failures {
            let _ = write!(report, "\n  {name} (run {run}): {why}");
        }
        panic!("{report}");
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "a panic without a message".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}
