//! How a consumer polls, runs handlers, retries and shuts down.

use std::time::Duration;

use crate::error::BusError;
use crate::limits::{MAX_RECEIVE_MESSAGES, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME};

/// The shortest visibility timeout the consumer works with: a lease must outlast a receive, an
/// extension round trip and a handler's first moments.
pub const MIN_VISIBILITY: Duration = Duration::from_secs(2);
/// Messages in flight per consumer at most (a bound far above any useful setting).
const MAX_IN_FLIGHT: usize = 100_000;
/// Attempts when neither a redrive policy nor the configuration says.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;
use crate::retry::RetryPolicy;

/// Consumer settings; every field has a production default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Concurrent long-poll loops at most. The consumer runs `min_pollers` of them and adds one
    /// while receives come back full (a backlog), then parks one after each receive that comes
    /// back partial or empty, or fails: extra loops only poll a deep queue, where they raise
    /// throughput, and never a quiet one, where they would only split its messages into more
    /// receives. Default 2: the default in-flight limit and concurrency are 10 per poller, so a
    /// higher default would also raise how many handlers run at once; raise it where a deep
    /// backlog must drain faster than two loops' round trips allow.
    pub pollers: usize,
    /// Long-poll loops that always run (default 1, at most `pollers`). Set it to `pollers` for
    /// a fixed number of loops.
    pub min_pollers: usize,
    /// Messages received and not yet decided by a handler, at most; polling pauses at this
    /// many (backpressure). Default: 10 per poller. At most `concurrency` plus one batch per
    /// poller: a prefetched message waits for a handler with its lease kept, and if shutdown
    /// hands it back, that receive still counts against the queue's `maxReceiveCount`. Decided
    /// messages whose settlement is still under way are bounded too, at ten times this, so a
    /// delete outage pauses polling.
    pub max_in_flight: Option<usize>,
    /// Handlers running at once; received messages beyond this wait (prefetched, their leases
    /// kept). Default: `max_in_flight`.
    pub concurrency: Option<usize>,
    /// Long-poll wait per receive.
    #[serde(with = "humantime_serde")]
    pub wait_time: Duration,
    /// With fewer free slots than a full batch, a poller waits this long for more before it
    /// receives as many messages as it has slots: full batches cost fewer requests, partial ones
    /// wait less.
    #[serde(with = "humantime_serde")]
    pub receive_fill_wait: Duration,
    /// Visibility timeout requested per receive; the queue's own when `None`.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Option<Duration>,
    /// A handler running longer is cancelled and its message retried.
    #[serde(with = "humantime_serde")]
    pub handler_timeout: Duration,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// Attempts when the queue has no redrive policy (default 5). With one, its
    /// `maxReceiveCount` rules and a value here is ignored with a warning.
    pub max_attempts: Option<u32>,
    /// Dead-letter queue when the queue has no redrive policy. With one, the policy's queue
    /// rules and a value here is ignored with a warning.
    pub dead_letter_queue: Option<String>,
    /// Successful deletes wait at most this long to fill a batch of 10.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// The whole shutdown takes at most this long: polls end, running handlers finish (they are
    /// cancelled when a fifth of it, at most 5 s, is left), and every settlement is flushed.
    /// Whatever is not settled by then reappears after its visibility timeout. Keep it below the
    /// platform's kill timeout (ECS `stopTimeout`: 30 s by default).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The handler's name in dead-letter reasons.
    pub handler_name: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            pollers: 2,
            min_pollers: 1,
            max_in_flight: None,
            concurrency: None,
            wait_time: MAX_WAIT_TIME,
            receive_fill_wait: Duration::from_secs(1),
            visibility_timeout: None,
            handler_timeout: Duration::from_secs(5 * 60),
            retry: RetryPolicy::default(),
            max_attempts: None,
            dead_letter_queue: None,
            flush_interval: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(25),
            handler_name: "handler".to_owned(),
        }
    }
}

impl ConsumerConfig {
    /// Messages in flight at most.
    pub fn in_flight_limit(&self) -> usize {
        self.max_in_flight
            .unwrap_or(self.pollers * MAX_RECEIVE_MESSAGES)
    }

    /// Attempts when the queue has no redrive policy.
    pub fn attempts_without_redrive(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// How long handlers get at shutdown before they are cancelled: all but the part kept for
    /// flushing settlements.
    pub fn handler_grace(&self) -> Duration {
        let reserve = (self.shutdown_timeout / 5).min(Duration::from_secs(5));
        self.shutdown_timeout - reserve
    }

    /// Handlers running at most.
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency
            .unwrap_or_else(|| self.in_flight_limit())
            .min(self.in_flight_limit())
    }

    /// Rejects settings that cannot work.
    ///
    /// # Errors
    /// `Config` naming the setting.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |m: &str| Err(BusError::Config(m.to_owned()));
        if self.pollers == 0 {
            return bad("pollers must be at least 1");
        }
        if self.min_pollers == 0 || self.min_pollers > self.pollers {
            return bad("min_pollers must be 1 to pollers (the most long-poll loops)");
        }
        if self.in_flight_limit() == 0 || self.concurrency_limit() == 0 {
            return bad("max_in_flight and concurrency must be at least 1");
        }
        if self.wait_time > MAX_WAIT_TIME || self.wait_time < Duration::from_secs(1) {
            return bad(
                "wait_time must be 1 to 20 s: long polling (a short poll would spin on an empty queue)",
            );
        }
        if self
            .visibility_timeout
            .is_some_and(|v| v < MIN_VISIBILITY || v > MAX_VISIBILITY_TIMEOUT)
        {
            return bad("visibility_timeout must be 2 s to 12 hours");
        }
        if self.in_flight_limit() > MAX_IN_FLIGHT {
            return bad("max_in_flight must be at most 100000");
        }
        if self.max_attempts == Some(0) {
            return bad("max_attempts must be at least 1");
        }
        let prefetch_bound = self.concurrency_limit() + self.pollers * MAX_RECEIVE_MESSAGES;
        if self.in_flight_limit() > prefetch_bound {
            return Err(BusError::Config(format!(
                "max_in_flight ({}) allows more prefetched messages than will run soon: at most concurrency ({}) plus one batch of 10 per poller ({prefetch_bound})",
                self.in_flight_limit(),
                self.concurrency_limit()
            )));
        }
        if self.shutdown_timeout < Duration::from_secs(1)
            || self.shutdown_timeout > Duration::from_secs(3600)
        {
            return bad(
                "shutdown_timeout must be 1 s to 1 hour: settling what is held takes a round trip, and no platform waits longer",
            );
        }
        if self.flush_interval.is_zero() || self.flush_interval > Duration::from_secs(10) {
            return bad("flush_interval must be above 0 and at most 10 s");
        }
        if self.receive_fill_wait > MAX_WAIT_TIME {
            return bad("receive_fill_wait must be at most 20 s");
        }
        if self.handler_timeout.is_zero() {
            return bad("handler_timeout must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_scale_with_pollers() {
        let c = ConsumerConfig {
            pollers: 3,
            ..ConsumerConfig::default()
        };
        assert_eq!(c.in_flight_limit(), 30);
        assert_eq!(c.concurrency_limit(), 30);
        let c = ConsumerConfig {
            max_in_flight: Some(200),
            concurrency: Some(500),
            ..c
        };
        assert_eq!(
            c.concurrency_limit(),
            200,
            "never more handlers than messages in flight"
        );
    }

    #[test]
    fn reads_human_durations_from_toml() {
        let c: ConsumerConfig = toml::from_str("wait_time = \"5s\"\nvisibility_timeout = \"2m\"\nhandler_timeout = \"90s\"\n[retry]\nbase = \"1s\"\nmax = \"10m\"\njitter = \"full\"").expect("valid");
        assert_eq!(c.wait_time, Duration::from_secs(5));
        assert_eq!(c.visibility_timeout, Some(Duration::from_secs(120)));
        assert_eq!(c.handler_timeout, Duration::from_secs(90));
        assert_eq!(c.retry.max, Duration::from_secs(600));
        c.validate().expect("valid");
        assert!(
            ConsumerConfig {
                wait_time: Duration::from_secs(21),
                ..ConsumerConfig::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn min_pollers_is_one_to_pollers_and_defaults_to_one() {
        let c: ConsumerConfig = toml::from_str("pollers = 4").expect("valid");
        assert_eq!(
            (c.min_pollers, c.pollers),
            (1, 4),
            "configs without it stay valid"
        );
        c.validate().expect("valid");
        for (min_pollers, pollers, ok) in [(0, 2, false), (1, 1, true), (2, 2, true), (3, 2, false)]
        {
            let c = ConsumerConfig {
                pollers,
                min_pollers,
                ..ConsumerConfig::default()
            };
            let result = c.validate();
            assert_eq!(result.is_ok(), ok, "{min_pollers} of {pollers}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("min_pollers"), "{e}");
            }
        }
    }
}
