//! The deploy/observability files as tests read them: promtool, the dashboard's queries and the
//! metric names they use.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// `deploy/observability/<name>`.
pub fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/observability")
        .join(name)
}

/// promtool from `FLEET_PROMTOOL` (set by scripts/test) or the PATH; a test that needs it fails
/// with the install step when it is missing, never skips.
pub fn promtool() -> Command {
    let path = std::env::var("FLEET_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let probe = Command::new(&path).arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "promtool not found at {path:?}: run ./scripts/test (it installs Debian's prometheus \
         package, which provides promtool) or `apt-get install prometheus`"
    );
    Command::new(path)
}

/// Runs promtool with `args`; panics with its output unless it succeeds. Returns its stdout and
/// stderr together.
pub fn promtool_ok(args: &[&str]) -> String {
    let out = promtool().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every query of the Grafana dashboard, as written.
pub fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(file("dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// The `fleet_*` metric names the dashboard's queries use, histogram parts reduced to their
/// metric (`fleet_x_seconds_bucket` → `fleet_x_seconds`).
pub fn dashboard_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for query in dashboard_queries() {
        let mut rest = query.as_str();
        while let Some(i) = rest.find("fleet_") {
            // Skip a match inside a longer identifier (none today, but be exact).
            let before = rest[..i].chars().next_back();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                names.insert(base_name(&tail[..end]).to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// A histogram's metric name from one of its series' names.
pub fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|base| base.ends_with("_seconds"))
        .unwrap_or(name)
}

/// The metric names of a Prometheus text exposition (histogram parts reduced to their metric).
pub fn scrape_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| base_name(n).to_owned())
        .collect()
}

/// The dashboard's queries as a rules file promtool can check (Grafana's variables replaced by
/// plain values), written to a temporary file.
pub fn dashboard_as_rules() -> PathBuf {
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in dashboard_queries().iter().enumerate() {
        let q = q.replace("$__rate_interval", "5m").replace("$worker", ".*");
        yaml.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    let path =
        std::env::temp_dir().join(format!("fleet-dashboard-rules-{}.yml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    path
}
