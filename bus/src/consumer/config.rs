//! How a consumer polls, runs handlers, retries and shuts down.

use std::time::Duration;

use crate::error::BusError;
use crate::limits::{MAX_RECEIVE_MESSAGES, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME};

/// The shortest visibility timeout the consumer works with: a lease must outlast a receive, an
/// extension round trip and a handler's first moments.
pub const MIN_VISIBILITY: Duration = Duration::from_secs(2);
/// Messages in flight per consumer at most (a bound far above any useful setting).
const MAX_IN_FLIGHT: usize = 100_000;
use crate::retry::RetryPolicy;

/// Consumer settings; every field has a production default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Concurrent long-poll loops.
    pub pollers: usize,
    /// Messages received and not yet decided, at most; polling pauses at this many
    /// (backpressure). Default: 10 per poller.
    pub max_in_flight: Option<usize>,
    /// Handlers running at once; received messages beyond this wait (prefetched, their leases
    /// kept). Default: `max_in_flight`.
    pub concurrency: Option<usize>,
    /// Long-poll wait per receive.
    #[serde(with = "humantime_serde")]
    pub wait_time: Duration,
    /// Visibility timeout requested per receive; the queue's own when `None`.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Option<Duration>,
    /// A handler running longer is cancelled and its message retried.
    #[serde(with = "humantime_serde")]
    pub handler_timeout: Duration,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// Attempts when the queue has no redrive policy (with one, its `maxReceiveCount` rules).
    pub max_attempts: u32,
    /// Dead-letter queue when the queue's redrive policy names none.
    pub dead_letter_queue: Option<String>,
    /// Successful deletes wait at most this long to fill a batch of 10.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// In-flight handlers get this long to finish at shutdown before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The handler's name in dead-letter reasons.
    pub handler_name: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            pollers: 2,
            max_in_flight: None,
            concurrency: None,
            wait_time: MAX_WAIT_TIME,
            visibility_timeout: None,
            handler_timeout: Duration::from_secs(5 * 60),
            retry: RetryPolicy::default(),
            max_attempts: 5,
            dead_letter_queue: None,
            flush_interval: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(30),
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
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
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
}
