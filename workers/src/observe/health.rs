//! The rules of `/readyz` and `/healthz`, as pure functions of the process's phase and its
//! consumers' statuses.
//!
//! - Ready (`/readyz`, and `fleet_worker_ready`): the process is running (not starting, not
//!   draining) and every worker is ready: its queue and dead-letter queue are resolved, polling
//!   has started (a receive answered, or a long poll was accepted), it is not paused, not stopping, and its receives
//!   have not been failing for longer than `unready_after`. A load balancer or an orchestrator
//!   stops sending work to an unready process; nothing restarts it.
//! - Alive (`/healthz`): every consumer's loops are turning. A process that is starting or
//!   draining is alive; an orchestrator restarts a process that is not.

use std::fmt::Write as _;
use std::time::Duration;

use fleet_bus::consumer::ConsumerStatus;

/// Where the process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Checking its resources and starting its workers.
    Starting,
    /// Its workers are running.
    Running,
    /// A signal came: it is draining (never ready again).
    Draining,
}

/// What a probe answers: whether it passes, and a body of one line per worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Pass (HTTP 200) or fail (HTTP 503).
    pub ok: bool,
    /// One line per worker, or one line for the whole process.
    pub body: String,
}

/// Why a worker is not ready, or `None` when it is.
pub fn unready_reason(status: &ConsumerStatus, unready_after: Duration) -> Option<String> {
    if status.queue.is_empty() || status.dead_letter_queue.is_empty() {
        return Some("queue or dead-letter queue not resolved".to_owned());
    }
    if status.stopping {
        return Some("stopping".to_owned());
    }
    if let Some(reason) = &status.paused {
        return Some(format!("paused: {reason}"));
    }
    if !status.polling {
        return Some("polling has not started".to_owned());
    }
    // The failures began after the last receive that answered, so `since_last_receive` bounds
    // how long they have lasted (from above, by at most one long poll).
    let failing_for = status.since_last_receive.unwrap_or(Duration::MAX);
    if status.receive_failures > 0 && failing_for > unready_after {
        return Some(format!(
            "receives failing for {}s ({} in a row)",
            failing_for.as_secs(),
            status.receive_failures
        ));
    }
    None
}

/// The `/readyz` verdict.
pub fn readiness(
    phase: Phase,
    workers: &[(String, ConsumerStatus)],
    unready_after: Duration,
) -> Verdict {
    match phase {
        Phase::Starting => return fail("starting"),
        Phase::Draining => return fail("draining"),
        Phase::Running if workers.is_empty() => return fail("no worker running"),
        Phase::Running => {}
    }
    per_worker(workers, |s| unready_reason(s, unready_after), "ready")
}

/// Why a consumer's loops are not turning, or `None` when they are: a receive hung on the wire,
/// or a settler that stopped turning its loop (a poller waiting for free handler slots is not
/// stalled).
pub fn stalled_reason(status: &ConsumerStatus) -> Option<String> {
    status.stalled.clone()
}

/// The `/healthz` verdict: `stalled` says why a worker's loops are not turning (see
/// [`stalled_reason`]).
pub fn liveness(
    phase: Phase,
    workers: &[(String, ConsumerStatus)],
    stalled: impl Fn(&ConsumerStatus) -> Option<String>,
) -> Verdict {
    match phase {
        Phase::Starting => pass("starting"),
        Phase::Draining => pass("draining"),
        Phase::Running => per_worker(workers, stalled, "alive"),
    }
}

fn per_worker(
    workers: &[(String, ConsumerStatus)],
    problem: impl Fn(&ConsumerStatus) -> Option<String>,
    fine: &str,
) -> Verdict {
    let mut ok = true;
    let mut body = String::new();
    for (worker, status) in workers {
        // Writing to a String does not fail.
        let _ = match problem(status) {
            Some(why) => {
                ok = false;
                writeln!(body, "{worker}: not {fine}: {why}")
            }
            None => writeln!(body, "{worker}: {fine}"),
        };
    }
    Verdict { ok, body }
}

fn pass(line: &str) -> Verdict {
    Verdict {
        ok: true,
        body: format!("{line}\n"),
    }
}

fn fail(line: &str) -> Verdict {
    Verdict {
        ok: false,
        body: format!("{line}\n"),
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
