//! What `fleet run` tells the platform it runs on about its life: systemd's notifications
//! ([`super::systemd`]) and, inside an ECS task, scale-in protection ([`super::protection`]).
//! Both do nothing where their platform is absent.

use std::sync::Arc;
use std::time::Duration;

use super::config::FleetConfig;
use super::protection::{Agent, TaskProtection};
use super::systemd::Systemd;
use super::{Ending, Fleet};
use crate::iam_actions::IssuedActions;
use crate::observe::StatusSource;

/// The platform hooks of one `fleet run`.
#[derive(Default)]
pub struct Lifecycle {
    systemd: Systemd,
    protection: Option<TaskProtection>,
}

impl Lifecycle {
    /// The preflight is about to run.
    pub fn starting(&self) {
        self.systemd
            .status("starting: checking the queues, topics and table");
    }

    /// The workers run: systemd hears `READY=1`, and task protection follows their messages
    /// in flight when the ECS agent is there.
    pub fn running(
        &mut self,
        config: &FleetConfig,
        fleet: &Fleet,
        workers: &[&str],
        issued: &IssuedActions,
    ) {
        let source: Arc<dyn StatusSource> = fleet.status_source();
        self.systemd.ready(source.clone(), workers);
        if let Some(agent) = Agent::from_env(&config.ecs) {
            let agent = agent.recording(issued.clone());
            self.protection = Some(TaskProtection::start(agent, &config.ecs, source));
        }
    }

    /// The first signal: the drain begins; task protection is kept until it ends.
    pub fn draining(&self, signal: &str, deadline: Duration) {
        self.systemd.stopping(signal, deadline);
        if let Some(p) = &self.protection {
            p.hold();
        }
    }

    /// The drain ended: task protection is released.
    pub async fn drained(self, ending: Ending) {
        let status = match ending {
            Ending::Drained => "drained in time",
            _ => "the drain did not finish cleanly",
        };
        self.systemd.status(status);
        if let Some(p) = self.protection {
            p.finish().await;
        }
    }
}
