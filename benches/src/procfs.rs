//! What `/proc` says of a process: CPU time (`stat`: utime + stime) and memory (`status`: VmRSS,
//! VmHWM, the peak resident set).

use std::time::Duration;

use anyhow::Context;

/// A process's CPU time and memory at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set now, bytes.
    pub rss: u64,
    /// Peak resident set so far (VmHWM), bytes.
    pub peak_rss: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
///
/// # Errors
/// When the process is gone or the files do not parse.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(Usage {
        cpu: cpu_of_stat(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?,
        rss: status_kb(&status, "VmRSS").unwrap_or(0) * 1024,
        peak_rss: status_kb(&status, "VmHWM").unwrap_or(0) * 1024,
    })
}

/// utime + stime (fields 14 and 15, in clock ticks) of a `stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its last `)`.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_second(),
    ))
}

/// `USER_HZ`: 100 on every Linux architecture Rust targets; `getconf` says so if it differs.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `Key:   1234 kB` line of `status`, in kB.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_utime_plus_stime_counted_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert_eq!(
            cpu_of_stat(stat),
            Some(Duration::from_secs_f64(300.0 / ticks_per_second()))
        );
    }

    #[test]
    fn status_values_are_read_by_key() {
        let status = "Name:\tx\nVmHWM:\t   15360 kB\nVmRSS:\t   12288 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(15360));
        assert_eq!(status_kb(status, "VmRSS"), Some(12288));
        assert_eq!(status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_has_a_usage() {
        let u = usage(std::process::id()).expect("our own /proc entry");
        assert!(u.peak_rss >= u.rss && u.rss > 0, "{u:?}");
    }
}
