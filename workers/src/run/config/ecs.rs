//! `[ecs]`: how `fleet run` behaves inside an Amazon ECS task.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The shortest protection the ECS agent accepts (`ExpiresInMinutes` at least 1).
pub const MIN_PROTECTION: Duration = Duration::from_secs(60);
/// The longest protection the ECS agent accepts (`ExpiresInMinutes` at most 2880: 48 hours).
pub const MAX_PROTECTION: Duration = Duration::from_secs(2880 * 60);

/// The ECS settings of `fleet run`; they only act where the ECS agent injected `ECS_AGENT_URI`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsConfig {
    /// Hold task scale-in protection while any worker has messages in flight, and release it
    /// when every worker is idle, so a scale-in or a deployment never stops a busy task.
    #[serde(default = "yes")]
    pub task_protection: bool,
    /// How long one protection lasts unless renewed (1m to 48h, whole minutes): a process that
    /// hangs while protected blocks scale-in for at most this long. A busy period renews it
    /// once three quarters of it have passed.
    #[serde(default = "protection_expires_after", with = "humantime_serde")]
    pub protection_expires_after: Duration,
}

impl Default for EcsConfig {
    fn default() -> Self {
        Self {
            task_protection: true,
            protection_expires_after: protection_expires_after(),
        }
    }
}

impl EcsConfig {
    /// The problem with these settings, if any (the message names the key).
    pub fn problem(&self) -> Option<String> {
        let d = self.protection_expires_after;
        let whole_minutes = d.as_secs().is_multiple_of(60) && d.subsec_nanos() == 0;
        (!(MIN_PROTECTION..=MAX_PROTECTION).contains(&d) || !whole_minutes).then(|| {
            "ecs.protection_expires_after: whole minutes from 1m to 48h (the agent's ExpiresInMinutes is 1 to 2880)".to_owned()
        })
    }

    /// `ExpiresInMinutes` for the agent.
    pub fn expires_in_minutes(&self) -> u64 {
        self.protection_expires_after.as_secs() / 60
    }
}

fn yes() -> bool {
    true
}

fn protection_expires_after() -> Duration {
    Duration::from_secs(60 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_is_whole_minutes_within_the_agent_s_range() {
        let with = |secs| EcsConfig {
            protection_expires_after: Duration::from_secs(secs),
            ..EcsConfig::default()
        };
        assert_eq!(EcsConfig::default().problem(), None);
        assert_eq!(EcsConfig::default().expires_in_minutes(), 60);
        assert_eq!(with(60).problem(), None);
        assert_eq!(with(2880 * 60).problem(), None);
        for bad in [0, 59, 90, 2881 * 60] {
            assert!(with(bad).problem().is_some(), "{bad}s");
        }
    }
}
