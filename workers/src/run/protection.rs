//! ECS task scale-in protection: while any worker has messages in flight, the task asks the ECS
//! agent to protect it (`PUT $ECS_AGENT_URI/task-protection/v1/state`), so a scale-in or a
//! deployment stops idle tasks rather than busy ones; once every worker has been idle for
//! [`RELEASE_AFTER_IDLE`], it releases the protection.
//!
//! - One busy period costs two calls (protect, release), plus one renewal each time three
//!   quarters of `protection_expires_after` pass while still busy. An idle process makes none.
//! - The expiry bounds the harm of a process that hangs while protected.
//! - A failed call is logged (at most once a minute), counted in
//!   `fleet_task_protection_calls_total{outcome="failed"}`, and tried again after a backoff;
//!   it never stops the workers.
//! - On the first signal the watcher stops: protection is kept through the drain and released
//!   after it ([`TaskProtection::finish`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::EcsConfig;
use super::http_client;
use crate::deploy::iam::Resource;
use crate::iam_actions::IssuedActions;
use crate::observe::StatusSource;
use crate::observe::metrics::{TASK_PROTECTED, TASK_PROTECTION_CALLS};

/// The variable the ECS agent injects into every container of a task.
pub const AGENT_URI_VAR: &str = "ECS_AGENT_URI";
/// The agent's task protection path, under `ECS_AGENT_URI`.
pub const STATE_PATH: &str = "/task-protection/v1/state";
/// Every worker idle this long releases the protection: short enough to release within a
/// second of idle, long enough that the gap between two receives of a steady trickle does
/// not cost two calls per message.
pub const RELEASE_AFTER_IDLE: Duration = Duration::from_millis(500);
/// How often the watcher reads the workers' in-flight counts.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// How long one call to the agent may take (it calls ECS's UpdateTaskProtection in turn).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the release after the drain may hold up the exit.
const FINAL_RELEASE_LIMIT: Duration = Duration::from_secs(2);
/// After a failed call, the next try waits this long, doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// At most one warning per this long about failed calls.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A call to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Protect (or renew the protection of) the task.
    Protect,
    /// Release the protection.
    Release,
}

impl Call {
    fn label(self) -> &'static str {
        match self {
            Call::Protect => "protect",
            Call::Release => "release",
        }
    }
}

/// When to call the agent, as a pure function of what the watcher sees.
#[derive(Clone, Debug)]
pub struct Policy {
    expires_after: Duration,
    /// Until when the agent protects the task, as far as this process knows.
    protected_until: Option<Instant>,
    idle_since: Option<Instant>,
    retry_at: Option<Instant>,
    failures: u32,
}

impl Policy {
    /// No protection yet; each protection lasts `expires_after`.
    pub fn new(expires_after: Duration) -> Self {
        Self {
            expires_after,
            protected_until: None,
            idle_since: None,
            retry_at: None,
            failures: 0,
        }
    }

    /// Whether the task is protected now, as far as this process knows.
    pub fn protected(&self, now: Instant) -> bool {
        self.protected_until.is_some_and(|until| until > now)
    }

    /// The call to make now, given whether any worker has messages in flight.
    pub fn next(&mut self, busy: bool, now: Instant) -> Option<Call> {
        if self.protected_until.is_some_and(|until| until <= now) {
            // Expired on the agent's side: nothing to release.
            self.protected_until = None;
        }
        if busy {
            self.idle_since = None;
        } else {
            self.idle_since.get_or_insert(now);
        }
        if self.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        match (busy, self.protected_until) {
            (true, None) => Some(Call::Protect),
            (true, Some(until)) => {
                let renew_at = until - self.expires_after / 4;
                (now >= renew_at).then_some(Call::Protect)
            }
            (false, Some(_)) => {
                let idle_for = self.idle_since.map_or(Duration::ZERO, |since| now - since);
                (idle_for >= RELEASE_AFTER_IDLE).then_some(Call::Release)
            }
            (false, None) => None,
        }
    }

    /// The agent answered `call`, sent at `sent_at`: `ok` or not.
    pub fn done(&mut self, call: Call, ok: bool, sent_at: Instant, now: Instant) {
        if !ok {
            self.failures = self.failures.saturating_add(1);
            let backoff = FIRST_BACKOFF
                .saturating_mul(1u32 << self.failures.min(6).saturating_sub(1))
                .min(MAX_BACKOFF);
            self.retry_at = Some(now + backoff);
            return;
        }
        self.failures = 0;
        self.retry_at = None;
        self.protected_until = match call {
            // Counted from when the request left, so this process never believes in more
            // protection than the agent grants.
            Call::Protect => Some(sent_at + self.expires_after),
            Call::Release => None,
        };
    }
}

/// The ECS agent's task protection endpoint.
#[derive(Clone, Debug)]
pub struct Agent {
    url: String,
    expires_in_minutes: u64,
    issued: Option<IssuedActions>,
}

impl Agent {
    /// The agent at `agent_uri` (the value of `ECS_AGENT_URI`).
    pub fn new(agent_uri: &str, config: &EcsConfig) -> Self {
        Self {
            url: format!("{}{STATE_PATH}", agent_uri.trim_end_matches('/')),
            expires_in_minutes: config.expires_in_minutes(),
            issued: None,
        }
    }

    /// Records each call the agent accepted as the `ecs:UpdateTaskProtection` it makes with the
    /// task role (in `fleet run`'s "IAM actions used" report).
    #[must_use]
    pub fn recording(mut self, issued: IssuedActions) -> Self {
        self.issued = Some(issued);
        self
    }

    /// The agent named by `ECS_AGENT_URI`, when protection is on and the variable is set.
    pub fn from_env(config: &EcsConfig) -> Option<Self> {
        let uri = std::env::var(AGENT_URI_VAR).ok()?;
        (config.task_protection && !uri.trim().is_empty()).then(|| Self::new(&uri, config))
    }

    /// Makes `call`.
    ///
    /// # Errors
    /// Why the agent did not protect or release the task: no answer, a status other than
    /// 2xx, or an answer holding a `failure` or an `error` (the agent answers with either
    /// when ECS refuses, e.g. `TASK_NOT_VALID` for a task outside a service).
    pub async fn call(&self, call: Call) -> Result<(), String> {
        let body = match call {
            Call::Protect => format!(
                r#"{{"ProtectionEnabled":true,"ExpiresInMinutes":{}}}"#,
                self.expires_in_minutes
            ),
            Call::Release => r#"{"ProtectionEnabled":false}"#.to_owned(),
        };
        let answer = http_client::send("PUT", &self.url, Some(&body), CALL_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        refusal(answer.status, &answer.body).map_or(Ok(()), Err)?;
        if let Some(issued) = &self.issued {
            issued.record("ecs:UpdateTaskProtection", Resource::EcsTasks, Vec::new());
        }
        Ok(())
    }
}

/// Why an answer of the agent is a refusal, if it is one.
fn refusal(status: u16, body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    for key in ["failure", "error"] {
        if let Some(detail) = json.get(key).filter(|v| !v.is_null()) {
            return Some(format!("the agent answered {status} with {key} {detail}"));
        }
    }
    (!(200..300).contains(&status)).then(|| format!("the agent answered {status}: {body}"))
}

/// The running watcher.
pub struct TaskProtection {
    stop: CancellationToken,
    task: JoinHandle<Watcher>,
}

struct Watcher {
    agent: Agent,
    policy: Policy,
    last_warning: Option<Instant>,
    held_back: u32,
}

impl TaskProtection {
    /// Starts watching the in-flight counts of `source`'s workers.
    pub fn start(agent: Agent, config: &EcsConfig, source: Arc<dyn StatusSource>) -> Self {
        tracing::info!(url = %agent.url, expires_in_minutes = agent.expires_in_minutes,
            "ECS task protection: held while messages are in flight");
        let watcher = Watcher {
            agent,
            policy: Policy::new(config.protection_expires_after),
            last_warning: None,
            held_back: 0,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(watcher.run(source, stop.clone()));
        Self { stop, task }
    }

    /// Stops watching (the drain began): the protection held now is kept.
    pub fn hold(&self) {
        self.stop.cancel();
    }

    /// After the drain: stops watching and releases the protection if it is held.
    pub async fn finish(self) {
        self.stop.cancel();
        let Ok(mut watcher) = self.task.await else {
            return;
        };
        if watcher.policy.protected(Instant::now()) {
            // The task is stopping: a slow agent must not hold up the exit.
            let release = watcher.make(Call::Release);
            if tokio::time::timeout(FINAL_RELEASE_LIMIT, release)
                .await
                .is_err()
            {
                tracing::warn!("ECS task protection not released in time; it expires on its own");
            }
        }
    }
}

impl Watcher {
    async fn run(mut self, source: Arc<dyn StatusSource>, stop: CancellationToken) -> Self {
        let mut every = tokio::time::interval(LOOK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return self,
                _ = every.tick() => {}
            }
            let busy = source.statuses().iter().any(|(_, s)| s.in_flight > 0);
            if let Some(call) = self.policy.next(busy, Instant::now()) {
                self.make(call).await;
            }
        }
    }

    async fn make(&mut self, call: Call) {
        let sent_at = Instant::now();
        let result = self.agent.call(call).await;
        let now = Instant::now();
        self.policy.done(call, result.is_ok(), sent_at, now);
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(TASK_PROTECTION_CALLS, "operation" => call.label(), "outcome" => outcome)
            .increment(1);
        metrics::gauge!(TASK_PROTECTED).set(f64::from(u8::from(self.policy.protected(now))));
        match result {
            Ok(()) => tracing::debug!(action = call.label(), "ECS task protection updated"),
            Err(why) => self.warn(call, &why, now),
        }
    }

    fn warn(&mut self, call: Call, why: &str, now: Instant) {
        if self
            .last_warning
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            self.held_back += 1;
            return;
        }
        tracing::warn!(
            action = call.label(),
            error = why,
            held_back = self.held_back,
            "ECS task protection call failed; the workers go on, and the call is tried again (a scale-in may stop this task while it is busy: its messages come back after their visibility timeout)"
        );
        self.last_warning = Some(now);
        self.held_back = 0;
    }
}

#[cfg(test)]
#[path = "protection_tests.rs"]
mod tests;
