//! `fleet run` on its platforms: ECS task scale-in protection against a local stand-in of the
//! agent's documented endpoint, systemd's notifications on a real notify socket, `fleet
//! healthcheck` and `fleet scaling target` on a real process's endpoints, and the lints of the
//! files that deploy it (the systemd unit by `systemd-analyze security`, the Dockerfile by
//! hadolint).

#![allow(clippy::unwrap_used)]

#[path = "run_platform/agent.rs"]
mod agent;
mod common;
#[path = "run_platform/lints.rs"]
mod lints;
#[path = "run_platform/notify.rs"]
mod notify;
#[path = "run_platform/protection.rs"]
mod protection;
#[path = "run_platform/scaling.rs"]
mod scaling;

/// Runs `fleet ARGS` (no AWS needed: `healthcheck`, `scaling target` on a file or endpoint).
fn fleet(args: &[&str]) -> common::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--log-format", "text"])
        .args(args)
        .env_remove("FLEET_LOG")
        .output()
        .unwrap();
    common::Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
