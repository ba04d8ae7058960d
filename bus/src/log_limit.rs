//! A rate limit for log lines about a failing dependency: per key (a worker's error type), the
//! first few lines pass, then at most one per interval; the lines held back are counted and the
//! count is reported on the next line that passes, or by [`LogLimiter::overdue`] once the
//! interval is over. A key quiet for [`QUIET`] is forgotten: its next line starts afresh, with
//! the burst. A dependency that fails now and then (retries backing off to 30 s) keeps its key,
//! so it never gets the burst again during one outage.
//!
//! The limiter is pure: the caller passes the time, so tests run it on any clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Lines per key that always pass before the rate limit applies.
pub const BURST: u32 = 5;
/// After the burst, at most one line per key per this long.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// A key without a line (written or held back) for six intervals is forgotten.
pub const QUIET: Duration = Duration::from_secs(60);

/// Whether to write a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it, saying how many lines of its key were held back since the last one written.
    Log {
        /// Lines held back since the last line of this key.
        suppressed: u64,
    },
    /// Hold it back (it is counted).
    Suppress,
}

#[derive(Debug)]
struct Entry {
    /// Lines written since the key was last quiet.
    written: u32,
    last_written: Instant,
    last_seen: Instant,
    suppressed: u64,
}

/// Per-key rate limit of log lines (see the module documentation).
#[derive(Debug)]
pub struct LogLimiter<K> {
    burst: u32,
    interval: Duration,
    quiet: Duration,
    keys: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Default for LogLimiter<K> {
    fn default() -> Self {
        Self::new(BURST, INTERVAL)
    }
}

impl<K: Hash + Eq + Clone> LogLimiter<K> {
    /// A limiter that lets `burst` lines per key pass, then one per `interval`; a key quiet
    /// for six intervals starts afresh.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst,
            interval,
            quiet: interval * 6,
            keys: HashMap::new(),
        }
    }

    /// Whether a line of `key` written at `now` passes.
    pub fn check(&mut self, key: &K, now: Instant) -> Admit {
        let (interval, quiet) = (self.interval, self.quiet);
        let entry = match self.keys.get_mut(key) {
            Some(e) => e,
            None => self.keys.entry(key.clone()).or_insert(Entry {
                written: 0,
                last_written: now,
                last_seen: now,
                suppressed: 0,
            }),
        };
        if entry.suppressed == 0 && now.saturating_duration_since(entry.last_seen) >= quiet {
            entry.written = 0;
        }
        entry.last_seen = now;
        let due = now.saturating_duration_since(entry.last_written) >= interval;
        if entry.written < self.burst || due {
            entry.written = entry.written.saturating_add(1);
            entry.last_written = now;
            return Admit::Log {
                suppressed: std::mem::take(&mut entry.suppressed),
            };
        }
        entry.suppressed += 1;
        Admit::Suppress
    }

    /// Keys with lines held back whose interval is over, with how many were held back: the
    /// caller writes one line for each. Each key counts as having written a line now, and quiet
    /// keys are forgotten.
    pub fn overdue(&mut self, now: Instant) -> Vec<(K, u64)> {
        let (interval, quiet) = (self.interval, self.quiet);
        let mut due = Vec::new();
        self.keys.retain(|key, e| {
            let waited = now.saturating_duration_since(e.last_written) >= interval;
            if e.suppressed > 0 && waited {
                due.push((key.clone(), std::mem::take(&mut e.suppressed)));
                e.last_written = now;
            }
            e.suppressed > 0 || now.saturating_duration_since(e.last_seen) < quiet
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn written(l: &mut LogLimiter<&'static str>, key: &'static str, at: Instant) -> Option<u64> {
        match l.check(&key, at) {
            Admit::Log { suppressed } => Some(suppressed),
            Admit::Suppress => None,
        }
    }

    #[test]
    fn the_first_five_pass_then_one_per_ten_seconds_with_the_count_held_back() {
        let t = Instant::now();
        let mut l = LogLimiter::default();
        // A flood: one line every 100 ms for 25 s.
        let mut out = Vec::new();
        for i in 0..250 {
            let at = t + MS(100 * i);
            if let Some(s) = written(&mut l, "throttled", at) {
                out.push((at - t, s));
            }
        }
        let expected = vec![
            (MS(0), 0),
            (MS(100), 0),
            (MS(200), 0),
            (MS(300), 0),
            (MS(400), 0),
            // 10 s after the fifth line; lines 6..=103 were held back.
            (MS(10_400), 99),
            (MS(20_400), 99),
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn keys_are_limited_separately() {
        let t = Instant::now();
        let mut l = LogLimiter::new(1, INTERVAL);
        assert_eq!(written(&mut l, "a", t), Some(0));
        assert_eq!(written(&mut l, "a", t), None);
        assert_eq!(written(&mut l, "b", t), Some(0));
    }

    #[test]
    fn held_back_lines_are_reported_once_the_interval_is_over_even_if_no_line_follows() {
        let t = Instant::now();
        let mut l = LogLimiter::new(1, INTERVAL);
        written(&mut l, "a", t);
        written(&mut l, "a", t + MS(1));
        written(&mut l, "a", t + MS(9_000));
        assert!(l.overdue(t + MS(9_999)).is_empty());
        assert_eq!(l.overdue(t + MS(10_000)), vec![("a", 2)]);
        assert!(l.overdue(t + MS(10_001)).is_empty(), "reported once");
        // The report counts as the key's line: the next one waits its interval.
        assert_eq!(written(&mut l, "a", t + MS(10_500)), None);
        assert!(l.overdue(t + MS(19_999)).is_empty());
        assert_eq!(l.overdue(t + MS(20_000)), vec![("a", 1)]);
    }

    #[test]
    fn a_quiet_key_starts_afresh_and_is_forgotten() {
        let t = Instant::now();
        let mut l = LogLimiter::new(2, INTERVAL);
        for i in 0..2 {
            assert_eq!(written(&mut l, "a", t + MS(i)), Some(0));
        }
        assert_eq!(written(&mut l, "a", t + MS(2)), None);
        assert_eq!(written(&mut l, "a", t + MS(10_002)), Some(1));
        // Failing every 30 s: the key is kept, one line per interval at most, no new burst.
        assert_eq!(written(&mut l, "a", t + MS(40_000)), Some(0));
        assert_eq!(written(&mut l, "a", t + MS(40_001)), None);
        assert_eq!(l.overdue(t + MS(50_000)), vec![("a", 1)]);
        // Quiet for a minute: the burst is back.
        let later = t + MS(110_001);
        assert_eq!(written(&mut l, "a", later), Some(0));
        assert_eq!(written(&mut l, "a", later + MS(1)), Some(0));
        assert!(l.overdue(later + MS(61_000)).is_empty());
        assert!(l.keys.is_empty(), "quiet keys are dropped");
    }
}
