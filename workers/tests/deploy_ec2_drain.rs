//! `deploy/ec2/fleet-drain.sh`, the helper that completes an instance's termination lifecycle
//! hook: against a local instance-metadata endpoint (IMDSv2 tokens, the target lifecycle state)
//! and stand-ins for `systemctl` and `aws` that record their calls, it stops fleet only once the
//! instance is terminating, and completes the hook only after fleet has stopped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleet_bus::scenarios::unique_name;

const TOKEN: &str = "imds-token";
const INSTANCE: &str = "i-0fleet";

/// An IMDSv2 endpoint whose target lifecycle state turns `Terminated` at the `turn`-th read.
/// Returns its URL and the number of state reads so far.
fn metadata_endpoint(turn: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut token_ok = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                token_ok |=
                    line.to_ascii_lowercase() == format!("x-aws-ec2-metadata-token: {TOKEN}\r\n");
            }
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match (request.starts_with("PUT"), path) {
                (true, "/latest/api/token") => ("200 OK", TOKEN.to_owned()),
                (false, _) if !token_ok => ("401 Unauthorized", String::new()),
                (false, "/latest/meta-data/instance-id") => ("200 OK", INSTANCE.to_owned()),
                (false, "/latest/meta-data/autoscaling/target-lifecycle-state") => {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let state = if n >= turn { "Terminated" } else { "InService" };
                    ("200 OK", state.to_owned())
                }
                _ => ("404 Not Found", String::new()),
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, reads)
}

/// `systemctl` and `aws` stand-ins appending their arguments to `calls.log`; `aws` fails its
/// first `aws_failures` calls.
fn stand_ins(dir: &Path, aws_failures: u32) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = dir.join("calls.log");
    let write = |name: &str, body: String| {
        let path = bin.join(name);
        std::fs::write(&path, body).expect("write a stand-in");
        Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .expect("chmod");
    };
    write(
        "systemctl",
        format!(
            "#!/bin/bash\nsleep 0.3\necho \"systemctl $*\" >> {}\n",
            log.display()
        ),
    );
    write(
        "aws",
        format!(
            "#!/bin/bash\necho \"aws $*\" >> {log}\nn=$(grep -c '^aws ' {log})\n[ \"$n\" -gt {aws_failures} ]\n",
            log = log.display()
        ),
    );
    bin
}

fn run_drain(turn: usize, aws_failures: u32) -> (std::process::Output, Vec<String>, usize) {
    for tool in ["bash", "curl"] {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is missing: apt-get install -y {tool}"
        );
    }
    let dir = std::env::temp_dir().join(unique_name("fleet-drain"));
    let bin = stand_ins(&dir, aws_failures);
    let (imds, reads) = metadata_endpoint(turn);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ec2/fleet-drain.sh");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(&script)
        .env("PATH", path)
        .env("FLEET_IMDS", imds)
        .env("FLEET_DRAIN_POLL", "0.1")
        .env("FLEET_ASG", "fleet-orders")
        .env("FLEET_LIFECYCLE_HOOK", "fleet-drain")
        .env("AWS_REGION", "eu-west-1")
        .output()
        .expect("run fleet-drain.sh");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the drain script took too long"
    );
    let calls = std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let calls = calls.lines().map(str::to_owned).collect();
    (output, calls, reads.load(Ordering::SeqCst))
}

const COMPLETE: &str = "aws autoscaling complete-lifecycle-action --region eu-west-1 --auto-scaling-group-name fleet-orders --lifecycle-hook-name fleet-drain --instance-id i-0fleet --lifecycle-action-result CONTINUE";

#[test]
fn the_hook_is_completed_only_after_fleet_stopped_and_only_once_terminating() {
    let (output, calls, reads) = run_drain(3, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        reads, 3,
        "polled until the state turned Terminated, then stopped polling"
    );
    assert_eq!(
        calls,
        vec![
            "systemctl stop fleet.service".to_owned(),
            COMPLETE.to_owned()
        ]
    );
    assert!(stdout.contains("lifecycle action completed"), "{stdout}");
}

#[test]
fn a_refused_completion_is_retried() {
    let (output, calls, _) = run_drain(1, 2);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0], "systemctl stop fleet.service");
    assert!(calls[1..].iter().all(|c| c == COMPLETE), "{calls:?}");
}

/// `systemd-analyze`, or a panic naming its install step (the tests never skip).
fn systemd_analyze() -> String {
    let path = std::env::var("FLEET_SYSTEMD_ANALYZE").unwrap_or_else(|_| "systemd-analyze".into());
    assert!(
        Command::new(&path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: apt-get install -y systemd (or set FLEET_SYSTEMD_ANALYZE)"
    );
    path
}

#[test]
fn the_drain_unit_is_valid_and_scores_2_or_better_in_systemds_security_analysis() {
    let analyze = systemd_analyze();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(repo.join("deploy/ec2/fleet-drain.service")).expect("unit");
    // `verify` checks that ExecStart exists: point it at the script in the repository.
    let script = repo
        .join("deploy/ec2/fleet-drain.sh")
        .canonicalize()
        .expect("the script");
    let dir = std::env::temp_dir().join(unique_name("fleet-drain-unit"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let copy = dir.join("fleet-drain.service");
    let exec = format!("ExecStart={}", script.display());
    std::fs::write(
        &copy,
        unit.replace("ExecStart=/usr/local/libexec/fleet-drain", &exec),
    )
    .expect("write the copy");

    let verify = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze verify");
    let said = String::from_utf8_lossy(&verify.stderr).into_owned();
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "verify: {said}"
    );

    let security = Command::new(&analyze)
        .args(["security", "--offline=true"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&security.stdout).into_owned()
        + &String::from_utf8_lossy(&security.stderr);
    let score: f64 = text
        .split("Overall exposure level for fleet-drain.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in: {text}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(score <= 2.0, "exposure {score} above 2.0:\n{text}");
}
