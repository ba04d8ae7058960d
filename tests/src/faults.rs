//! Fault injection between the SDK and the emulator, switchable at runtime and seeded: a TCP
//! proxy with Toxiproxy-like toxics ([`tcp`]) and an HTTP proxy that answers chosen AWS
//! operations with real AWS errors ([`aws`]).
//!
//! Every random choice comes from [`Dice`], a pure function of the seed and a position, so a
//! run's faults depend on the seed and the order of calls, not on the clock or the scheduler.
//! [`seed`] reads `FLEET_FAULT_SEED` or picks one and prints it, so a failing run names the seed
//! that reproduces it.

pub mod aws;
pub mod tcp;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The environment variable that fixes the seed of a run.
pub const SEED_VAR: &str = "FLEET_FAULT_SEED";

/// The seed of this run: `FLEET_FAULT_SEED` when set (and a number), else one from the clock.
/// Printed either way (the test harness shows it when the test fails).
pub fn seed() -> u64 {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("fault seed: {seed} (rerun with {SEED_VAR}={seed})");
    seed
}

/// SDK configuration for the emulator behind a proxy at `endpoint`, with the SDK's own retries
/// off and each attempt cut at `attempt_timeout`: a test then sees each fault as the outcome of
/// the call, and the engine's retries, not the SDK's, decide what happens next.
pub async fn sdk_config_without_retries(endpoint: &str, attempt_timeout: Duration) -> SdkConfig {
    crate::moto::loader_at(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(attempt_timeout)
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await
}

/// A seeded stream of numbers (SplitMix64: tiny, and good enough to pick which calls fail).
#[derive(Clone, Debug)]
pub struct Dice {
    state: u64,
}

impl Dice {
    /// The stream for `seed` and a named purpose (`"ReceiveMessage"`, a connection number), so
    /// streams for different purposes do not move each other.
    pub fn new(seed: u64, purpose: &str) -> Self {
        // FNV-1a of the purpose, mixed into the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in purpose.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self { state: seed ^ h }
    }

    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits: exactly representable in an f64.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether the next call is hit, with probability `fraction`.
    pub fn hits(&mut self, fraction: f64) -> bool {
        self.unit() < fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_purpose_give_the_same_stream() {
        let a: Vec<u64> = {
            let mut d = Dice::new(7, "ReceiveMessage");
            (0..5).map(|_| d.next_u64()).collect()
        };
        let mut d = Dice::new(7, "ReceiveMessage");
        assert_eq!(a, (0..5).map(|_| d.next_u64()).collect::<Vec<_>>());
        let mut other = Dice::new(7, "SendMessage");
        assert_ne!(a[0], other.next_u64());
    }

    #[test]
    fn hits_come_at_about_the_fraction() {
        let mut d = Dice::new(42, "x");
        let hits = (0..10_000).filter(|_| d.hits(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| !d.hits(0.0)));
        assert!((0..1000).all(|_| d.hits(1.0)));
    }
}
