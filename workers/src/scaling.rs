//! The backlog-per-task target of a worker's target-tracking autoscaling, from what its
//! processes measured: a task clears `concurrency × messages per run ÷ mean handler duration`
//! messages a second (a batch handler's run holds a batch), so the backlog it clears within the
//! acceptable latency is `latency` times that rate. `fleet scaling target` prints it; the
//! ECS and EC2 templates take it as the policy's target value.

use std::fmt;
use std::time::Duration;

use crate::cost::scrape::Sample;

/// The handler duration histogram the engine records (seconds, labels `worker`, `queue`), and
/// its count of messages received (a batch handler's run holds several).
pub use fleet_bus::metrics::{HANDLER_DURATION, RECEIVED};

/// The measured handler durations of one worker, summed over every scrape given.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Durations {
    /// Seconds spent in handlers (`_sum`).
    pub seconds: f64,
    /// Handler runs (`_count`): one per message, or one per batch for a batch handler.
    pub runs: f64,
    /// Messages received (`fleet_messages_received_total`).
    pub messages: f64,
}

impl Durations {
    /// Adds the samples of `worker` (its `worker` label) from one exposition.
    pub fn add(&mut self, samples: &[Sample], worker: &str) {
        let sum = format!("{HANDLER_DURATION}_sum");
        let count = format!("{HANDLER_DURATION}_count");
        for s in samples.iter().filter(|s| s.label("worker") == Some(worker)) {
            if s.name == sum {
                self.seconds += s.value;
            } else if s.name == count {
                self.runs += s.value;
            } else if s.name == RECEIVED {
                self.messages += s.value;
            }
        }
    }

    /// Messages one handler run takes: 1 for a handler of one message, the mean batch size for
    /// a batch handler (at least 1; 1 when the scrape has no received count).
    pub fn messages_per_run(&self) -> f64 {
        if self.runs > 0.0 && self.messages > self.runs {
            self.messages / self.runs
        } else {
            1.0
        }
    }

    /// The mean handler duration; `None` without a run.
    pub fn mean(&self) -> Option<Duration> {
        (self.runs > 0.0 && self.seconds.is_finite())
            .then(|| Duration::from_secs_f64((self.seconds / self.runs).max(0.0)))
    }
}

/// What the target is computed from, and the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The worker's name.
    pub worker: String,
    /// The acceptable latency: how long a message may wait in the backlog.
    pub latency: Duration,
    /// The measured handler durations.
    pub durations: Durations,
    /// Handlers running at once per task (the worker's consumer concurrency).
    pub concurrency: usize,
    /// A cap on messages a second per task besides the handlers (the email worker's send
    /// rate), if any.
    pub rate_cap: Option<f64>,
}

impl Target {
    /// Messages one task clears a second; `None` without a measured run.
    pub fn per_task_rate(&self) -> Option<f64> {
        let mean = self.durations.mean()?.as_secs_f64();
        // A handler that took no measurable time: the cap (or nothing) bounds the rate.
        let by_handlers = if mean > 0.0 {
            self.concurrency as f64 * self.durations.messages_per_run() / mean
        } else {
            f64::INFINITY
        };
        let rate = self
            .rate_cap
            .map_or(by_handlers, |cap| by_handlers.min(cap));
        rate.is_finite().then_some(rate)
    }

    /// The backlog per task to keep: messages one task clears within the latency (at least 1).
    pub fn backlog_per_task(&self) -> Option<f64> {
        let rate = self.per_task_rate()?;
        Some((self.latency.as_secs_f64() * rate).floor().max(1.0))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let latency = humantime::format_duration(self.latency);
        writeln!(f, "worker:                 {}", self.worker)?;
        writeln!(f, "acceptable latency:     {latency}")?;
        writeln!(f, "handler runs measured:  {}", self.durations.runs)?;
        if let Some(mean) = self.durations.mean() {
            writeln!(
                f,
                "mean handler duration:  {:.1} ms",
                mean.as_secs_f64() * 1000.0
            )?;
        }
        writeln!(
            f,
            "messages per handler run: {:.2}",
            self.durations.messages_per_run()
        )?;
        writeln!(f, "concurrency per task:   {}", self.concurrency)?;
        if let Some(cap) = self.rate_cap {
            writeln!(f, "send rate cap per task: {cap}/s")?;
        }
        match (self.per_task_rate(), self.backlog_per_task()) {
            (Some(rate), Some(target)) => {
                writeln!(f, "messages per task:      {rate:.2}/s")?;
                write!(
                    f,
                    "backlog per task target: {target} (= {latency} × {rate:.2}/s; the target value of the backlog-per-task scaling policy)"
                )
            }
            _ => write!(f, "no target: no handler duration measured"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::scrape::samples;

    const EXPOSITION: &str = "\
fleet_handler_duration_seconds_bucket{worker=\"orders\",queue=\"fleet-orders\",le=\"0.05\"} 90
fleet_handler_duration_seconds_sum{worker=\"orders\",queue=\"fleet-orders\"} 4.0
fleet_handler_duration_seconds_count{worker=\"orders\",queue=\"fleet-orders\"} 100
fleet_handler_duration_seconds_sum{worker=\"analytics\",queue=\"fleet-analytics\"} 9.0
fleet_handler_duration_seconds_count{worker=\"analytics\",queue=\"fleet-analytics\"} 3
";

    fn target(worker: &str, scrapes: usize) -> Target {
        let mut durations = Durations::default();
        for _ in 0..scrapes {
            durations.add(&samples(EXPOSITION), worker);
        }
        Target {
            worker: worker.to_owned(),
            latency: Duration::from_secs(30),
            durations,
            concurrency: 20,
            rate_cap: None,
        }
    }

    #[test]
    fn the_target_is_latency_over_the_time_per_message_of_a_task() {
        // 40 ms a message, 20 at once: 500 messages a second; 30 s of them is 15000.
        let t = target("orders", 2);
        assert_eq!(t.durations.runs, 200.0);
        assert_eq!(t.per_task_rate(), Some(500.0));
        assert_eq!(t.backlog_per_task(), Some(15000.0));
        assert!(
            t.to_string().contains("backlog per task target: 15000"),
            "{t}"
        );
    }

    #[test]
    fn a_send_rate_caps_the_target() {
        let t = Target {
            rate_cap: Some(10.0),
            ..target("orders", 1)
        };
        assert_eq!(t.backlog_per_task(), Some(300.0));
    }

    /// Review finding: a batch handler (analytics) records one duration per batch, so the
    /// runs count batches; the rate must count the messages those batches held.
    #[test]
    fn a_batch_worker_clears_the_messages_of_its_batches_not_one_per_run() {
        // 3 batches of 10 messages, 3 s each: 0.3 s a message, 20 at once: 66.7 a second.
        let mut durations = Durations::default();
        durations.add(
            &samples(&format!(
                "{EXPOSITION}fleet_messages_received_total{{worker=\"analytics\",queue=\"fleet-analytics\"}} 30\n"
            )),
            "analytics",
        );
        let t = Target {
            worker: "analytics".to_owned(),
            latency: Duration::from_secs(30),
            durations,
            concurrency: 20,
            rate_cap: None,
        };
        assert_eq!(t.durations.messages_per_run(), 10.0);
        assert_eq!(t.backlog_per_task(), Some(2000.0));
        assert!(
            t.to_string().contains("messages per handler run: 10.00"),
            "{t}"
        );
    }

    #[test]
    fn no_samples_no_target() {
        let t = target("email", 1);
        assert_eq!(t.backlog_per_task(), None);
        assert!(t.to_string().contains("no handler duration measured"));
    }
}
