//! systemd's notifications from a real `fleet run` on a notify socket; `fleet healthcheck` and
//! `fleet scaling target` against the same live process.

use std::time::{Duration, Instant};

use super::agent::{Agent, Answers};
use super::{common, fleet};
use fleet_bus::scenarios::unique_name;

/// The datagrams a notify socket received, each with when it arrived.
fn notifications(
    socket: &std::os::unix::net::UnixDatagram,
    until: Instant,
) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buffer) {
            out.push((
                Instant::now(),
                String::from_utf8_lossy(&buffer[..n]).into_owned(),
            ));
        }
    }
    out
}

fn has(seen: &[(Instant, String)], line: &str) -> bool {
    seen.iter().any(|(_, m)| m.lines().any(|l| l == line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_run_says_ready_feeds_the_watchdog_and_says_stopping_on_sigterm() {
    let agent = Agent::start(Answers::Protect).await;
    let dir = std::env::temp_dir().join(unique_name("fleet-notify"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let topology = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/topology.toml");
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "transport = \"embedded\"\ntopology = \"{topology}\"\nshutdown_timeout = \"5s\"\n{}",
            common::observe::section()
        ),
    )
    .unwrap();
    let stderr = dir.join("run.err");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("ECS_AGENT_URI", &agent.uri)
        .env("FLEET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&stderr).unwrap_or_default();

    let running = notifications(&socket, Instant::now() + Duration::from_secs(4));
    let ready = running
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1: {running:?}\n{}", logs()));
    assert!(
        running[ready]
            .1
            .contains("STATUS=running: orders, analytics"),
        "{running:?}"
    );
    assert!(has(
        &running[..ready],
        "STATUS=starting: checking the queues, topics and table"
    ));
    let fed: Vec<Instant> = running[ready..]
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect();
    // Every 200 ms (half of WATCHDOG_USEC) for the seconds after READY.
    assert!(fed.len() >= 5, "{running:?}");
    let widest = fed.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest < Duration::from_millis(400), "a gap of {widest:?}");

    // The container healthcheck and the scaling target on the live process's endpoints.
    let address = common::observe::logged_address(&logs()).expect("endpoints logged");
    let healthz = format!("http://{address}/healthz");
    let check = fleet(&["healthcheck", "--url", &healthz]);
    assert_eq!(check.code, Some(0), "{}", check.stderr);
    let metrics = format!("http://{address}/metrics");
    let config_path = config.to_str().unwrap();
    let scaling = fleet(&[
        "scaling",
        "target",
        "--latency",
        "30s",
        "--worker",
        "orders",
        "--metrics",
        &metrics,
        "--config",
        config_path,
    ]);
    assert_eq!(scaling.code, Some(1), "{}", scaling.stdout);
    assert!(
        scaling
            .stderr
            .contains("no fleet_handler_duration_seconds samples for worker \"orders\""),
        "{}",
        scaling.stderr
    );

    let sent = Instant::now();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "no exit: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let drained_in = sent.elapsed();
    let stopping = notifications(&socket, Instant::now() + Duration::from_millis(100));
    println!("SIGTERM to exit: {drained_in:?}");
    assert_eq!(status.code(), Some(0), "{}", logs());
    assert!(has(&stopping, "STOPPING=1"), "{stopping:?}");
    assert!(
        has(&stopping, "STATUS=draining after SIGTERM: at most 5s"),
        "{stopping:?}"
    );
    assert!(has(&stopping, "STATUS=drained in time"), "{stopping:?}");
    // Idle all along: the ECS agent heard nothing, though the process watched for work.
    assert!(
        logs().contains("ECS task protection: held while messages are in flight"),
        "{}",
        logs()
    );
    assert!(agent.requests().is_empty(), "{:?}", agent.requests());
    let check = fleet(&["healthcheck", "--url", &healthz, "--timeout", "1s"]);
    assert_eq!(
        check.code,
        Some(1),
        "nothing listens any more: {}",
        check.stderr
    );
}
