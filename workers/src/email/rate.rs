//! One token bucket per process caps the sends per second (governor's GCRA: at most
//! `per_second × t + burst` sends in any window of `t`). A backlog waits for tokens; it never
//! fails for lack of them.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The process's send rate.
pub struct SendRate {
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
    per_second: f64,
    burst: u32,
}

impl std::fmt::Debug for SendRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRate")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

impl SendRate {
    /// At most `per_second` sends a second on average, `burst` at once (both at least a
    /// thousandth and one).
    pub fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() {
            per_second.max(0.001)
        } else {
            1_000_000.0
        };
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let burst = burst.max(1);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::direct(quota),
            per_second,
            burst,
        }
    }

    /// The configured rate, or the provider's when it is lower (SES `MaxSendRate`).
    pub fn capped(configured: f64, provider: Option<f64>, burst: u32) -> Self {
        let rate = match provider {
            Some(p) if p > 0.0 && p < configured => p,
            _ => configured,
        };
        Self::new(rate, burst)
    }

    /// Sends per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Sends at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        self.limiter.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backlog_waits_for_tokens_and_no_second_exceeds_rate_plus_burst() {
        let rate = SendRate::new(50.0, 2);
        let start = std::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..60 {
            rate.acquire().await;
            at.push(start.elapsed());
        }
        // 60 tokens at 50/s with a burst of 2: the last comes after about 1.16 s.
        assert!(at[59] >= Duration::from_millis(1100), "{:?}", at[59]);
        for (i, t) in at.iter().enumerate() {
            let window = at[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(window <= 52, "{window} in the second from {t:?}");
        }
    }

    #[test]
    fn the_provider_rate_caps_the_configured_one() {
        assert_eq!(SendRate::capped(20.0, Some(14.0), 1).per_second(), 14.0);
        assert_eq!(SendRate::capped(10.0, Some(14.0), 1).per_second(), 10.0);
        assert_eq!(SendRate::capped(10.0, None, 1).per_second(), 10.0);
        assert_eq!(SendRate::capped(10.0, Some(0.0), 3).burst(), 3);
    }
}
