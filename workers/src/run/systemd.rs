//! systemd's service notifications (`Type=notify`), through the `sd-notify` crate: `READY=1`
//! once the preflight passed and the consumers run, `WATCHDOG=1` while the engine is alive (the
//! rule of `/healthz`: a stalled receive or settler stops the feeding, so systemd restarts the
//! process after `WatchdogSec`), `STOPPING=1` on the first signal, and `STATUS=` lines for
//! `systemctl status`. Without `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fleet_bus::consumer::ConsumerStatus;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use crate::observe::StatusSource;
use crate::observe::health::{self, Phase};

/// The process's notifications to systemd.
pub struct Systemd {
    draining: Arc<AtomicBool>,
    watchdog: Option<JoinHandle<()>>,
}

impl Systemd {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Self {
            draining: Arc::new(AtomicBool::new(false)),
            watchdog: None,
        }
    }

    /// `STATUS=text`.
    pub fn status(&self, text: &str) {
        send(&[NotifyState::Status(text)]);
    }

    /// The consumers run: `READY=1`, and the watchdog is fed from `source` when systemd asks
    /// for one (`WATCHDOG_USEC`), at half its interval as systemd advises.
    pub fn ready(&mut self, source: Arc<dyn StatusSource>, workers: &[&str]) {
        let status = format!("running: {}", workers.join(", "));
        send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        if let Some(interval) = sd_notify::watchdog_enabled() {
            let every = (interval / 2).max(Duration::from_millis(10));
            tracing::info!(
                watchdog_ms = interval.as_millis() as u64,
                "systemd watchdog fed while the workers' loops turn"
            );
            let draining = self.draining.clone();
            self.watchdog = Some(tokio::spawn(feed(source, draining, every)));
        }
    }

    /// The first signal: `STOPPING=1`; the watchdog stays fed through the drain.
    pub fn stopping(&self, signal: &str, deadline: Duration) {
        self.draining.store(true, Ordering::Release);
        let status = format!(
            "draining after {signal}: at most {}s",
            deadline.as_secs_f64().ceil()
        );
        send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
    }
}

impl Default for Systemd {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        if let Some(task) = &self.watchdog {
            task.abort();
        }
    }
}

/// Why the watchdog must not be fed now, or `None` when it must: the `/healthz` rule.
pub fn starving_reason(draining: bool, workers: &[(String, ConsumerStatus)]) -> Option<String> {
    let phase = if draining {
        Phase::Draining
    } else {
        Phase::Running
    };
    let verdict = health::liveness(phase, workers, health::stalled_reason);
    (!verdict.ok).then(|| verdict.body.trim_end().replace('\n', "; "))
}

async fn feed(source: Arc<dyn StatusSource>, draining: Arc<AtomicBool>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    let mut starving = false;
    loop {
        tick.tick().await;
        let statuses = source.statuses();
        match starving_reason(draining.load(Ordering::Acquire), &statuses) {
            None => {
                send(&[NotifyState::Watchdog]);
                if std::mem::take(&mut starving) {
                    tracing::info!("the workers' loops turn again: systemd watchdog fed");
                }
            }
            Some(why) if !starving => {
                starving = true;
                tracing::error!(why = %why, "not alive: the systemd watchdog is no longer fed, so systemd restarts this process after WatchdogSec");
                send(&[NotifyState::Status(&format!("not alive: {why}"))]);
            }
            Some(_) => {}
        }
    }
}

/// Sends `states`; a failure is logged and otherwise ignored (systemd then judges the process
/// by its own timeouts).
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(stalled: Option<&str>) -> Vec<(String, ConsumerStatus)> {
        vec![(
            "orders".to_owned(),
            ConsumerStatus {
                queue: "orders".into(),
                dead_letter_queue: "orders-dlq".into(),
                polling: true,
                since_last_receive: Some(Duration::from_secs(1)),
                receive_failures: 0,
                stopping: false,
                paused: None,
                stalled: stalled.map(str::to_owned),
                in_flight: 0,
            },
        )]
    }

    #[test]
    fn a_stalled_worker_starves_the_watchdog_until_the_drain() {
        assert_eq!(starving_reason(false, &status(None)), None);
        let why =
            starving_reason(false, &status(Some("the settler has not turned"))).expect("starving");
        assert!(why.contains("orders: not alive: the settler"), "{why}");
        assert_eq!(
            starving_reason(true, &status(Some("x"))),
            None,
            "draining is alive"
        );
    }
}
