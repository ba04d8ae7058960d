//! How long a failed message waits before its next attempt: exponential backoff with jitter,
//! applied through the message's visibility timeout so the wait costs no worker and survives a
//! restart.

use std::time::Duration;

use crate::limits::MAX_VISIBILITY_TIMEOUT;

/// How the random part of a delay is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Jitter {
    /// Exactly the exponential delay (predictable; herds retry together).
    None,
    /// Uniform between half the delay and the delay: spreads retries, keeps a floor.
    #[default]
    Equal,
    /// Uniform between zero and the delay: spreads retries most.
    Full,
}

/// Exponential backoff for retries: `base * 2^(attempt-1)`, capped at `max`, with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// Longest delay.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Random spread.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
            jitter: Jitter::Equal,
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based), given a uniform random number in
    /// `[0, 1)`. Pure, so tests pass their own randomness. Never above the 12-hour visibility cap.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(62);
        let cap = self.max.min(MAX_VISIBILITY_TIMEOUT);
        let raw = self.base.saturating_mul(1u32 << exponent.min(31)).min(cap);
        let raw = if exponent > 31 { cap } else { raw };
        let r = random.clamp(0.0, 1.0);
        match self.jitter {
            Jitter::None => raw,
            Jitter::Equal => raw / 2 + raw.mul_f64(r / 2.0),
            Jitter::Full => raw.mul_f64(r),
        }
    }

    /// The delay after failed attempt `attempt`, with thread-local randomness.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_from_base_until_the_cap() {
        let p = RetryPolicy {
            base: S(2),
            max: S(60),
            jitter: Jitter::None,
        };
        let delays: Vec<_> = (1..=7).map(|a| p.delay(a, 0.5)).collect();
        assert_eq!(delays, [S(2), S(4), S(8), S(16), S(32), S(60), S(60)]);
        assert_eq!(p.delay(0, 0.5), S(2), "attempt 0 is treated as the first");
        assert_eq!(p.delay(u32::MAX, 0.5), S(60), "no overflow");
    }

    #[test]
    fn equal_jitter_stays_between_half_and_full() {
        let p = RetryPolicy {
            base: S(10),
            max: S(1000),
            jitter: Jitter::Equal,
        };
        assert_eq!(p.delay(1, 0.0), S(5));
        assert_eq!(p.delay(1, 0.999_999), Duration::from_secs_f64(9.999_995));
        assert_eq!(p.delay(2, 0.5), S(15));
    }

    #[test]
    fn full_jitter_spans_zero_to_full() {
        let p = RetryPolicy {
            base: S(8),
            max: S(1000),
            jitter: Jitter::Full,
        };
        assert_eq!(p.delay(1, 0.0), Duration::ZERO);
        assert_eq!(p.delay(1, 0.5), S(4));
        assert_eq!(p.delay(3, 0.25), S(8));
    }

    #[test]
    fn never_above_the_visibility_cap() {
        let p = RetryPolicy {
            base: S(3600),
            max: S(100 * 3600),
            jitter: Jitter::None,
        };
        assert_eq!(p.delay(10, 0.0), MAX_VISIBILITY_TIMEOUT);
        for a in 1..40 {
            assert!(p.delay_for(a) <= MAX_VISIBILITY_TIMEOUT);
        }
    }
}
