//! Running the `fleet` binary against the test process's moto_server.
#![allow(dead_code, clippy::unwrap_used)]

pub mod chaos;
pub mod cloudformation;
pub mod dashboard;
pub mod dlq;
pub mod fleet_run;
pub mod idempotency;
pub mod ledger;
pub mod mailer_conformance;
pub mod model;
pub mod observe;
pub mod orders;

use std::process::Command;

/// What a `fleet` run printed.
pub struct Output {
    pub ok: bool,
    /// The exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `fleet ARGS` with the AWS environment pointing at moto.
pub fn fleet(args: &[&str]) -> Output {
    fleet_with("text", &[], args)
}

/// Runs `fleet --log-format FORMAT ARGS` with the AWS environment pointing at moto, then `env`
/// applied on top (`None` removes a variable).
pub fn fleet_with(log_format: &str, env: &[(&str, Option<&str>)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleet"));
    command
        .arg("--log-format")
        .arg(log_format)
        .args(args)
        .env("AWS_ENDPOINT_URL", &fleet_tests::moto::moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "fleet-test")
        .env("AWS_SECRET_ACCESS_KEY", "fleet-test")
        .env_remove("AWS_PROFILE")
        .env_remove("FLEET_LOG")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let out = command.output().expect("run fleet");
    Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
