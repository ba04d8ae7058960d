//! Where the idempotency layer reads the time: expirations are epoch times shared with other
//! processes, while leases are tokio instants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A source of epoch milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: an epoch time and the tokio instant it was read at.
    anchor: Option<(u64, Instant)>,
}

impl Clock {
    /// The system clock: what records shared with other processes are judged by.
    pub fn system() -> Self {
        Self { anchor: None }
    }

    /// The system time now, moving with tokio's clock from here on: on a paused clock
    /// (`start_paused`, `tokio::time::advance`) expirations pass without real waiting.
    pub fn tokio() -> Self {
        Self {
            anchor: Some((system_ms(), Instant::now())),
        }
    }

    /// Epoch milliseconds now.
    pub fn now_ms(&self) -> u64 {
        match self.anchor {
            None => system_ms(),
            Some((epoch_ms, at)) => epoch_ms.saturating_add(millis(at.elapsed())),
        }
    }

    /// The epoch milliseconds of a tokio instant (a lease deadline).
    pub fn epoch_ms_at(&self, instant: Instant) -> u64 {
        let (now, now_ms) = (Instant::now(), self.now_ms());
        match instant.checked_duration_since(now) {
            Some(ahead) => now_ms.saturating_add(millis(ahead)),
            None => now_ms.saturating_sub(millis(now.duration_since(instant))),
        }
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time() {
        let clock = Clock::tokio();
        let start = clock.now_ms();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now_ms(), start + 90_000);
        let now = Instant::now();
        assert_eq!(
            clock.epoch_ms_at(now + Duration::from_secs(30)),
            start + 120_000
        );
        assert_eq!(
            clock.epoch_ms_at(now - Duration::from_secs(30)),
            start + 60_000
        );
        assert!(Clock::system().now_ms() >= start);
    }
}
