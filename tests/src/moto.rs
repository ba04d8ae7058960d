//! One moto_server per test process, started on first use on a free loopback port and stopped
//! when the process exits. Tests give their queues and topics unique names, so they share it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use fleet_bus::aws::SqsTransport;
use fleet_bus::scenarios::{Features, TestBus};

/// A running emulator.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The watchdog shell that owns the server; it exits with the test process.
    _watchdog: std::sync::Mutex<std::process::Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// Where `./scripts/test` installs the emulator, unless `FLEET_MOTO_SERVER` says otherwise.
fn moto_binary() -> PathBuf {
    std::env::var_os("FLEET_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
        })
}

/// The Python of the test venv (it has boto3, a second AWS SDK for cross-SDK tests).
pub fn python() -> PathBuf {
    std::env::var_os("FLEET_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("bound address").port()
}

fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// The launcher that serializes moto's DynamoDB calls and makes SQS's clock cheap
/// (`tests/moto/launcher.py` says why: without it, a failed transaction can undo a concurrent
/// successful write, and a deep queue costs 600 ms per receive).
fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto/launcher.py")
}

fn start() -> Moto {
    let bin = moto_binary();
    assert!(
        bin.exists(),
        "moto_server not found at {}: run ./scripts/test, which installs it into .venv",
        bin.display()
    );
    let port = free_port();
    let parent = std::process::id();
    // A small watchdog shell owns the server and stops it once this test process is gone, so no
    // emulator outlives the tests (a static's destructor never runs). The server is moto's own,
    // started through the launcher by the venv's Python.
    let script = format!(
        "\"$0\" \"$1\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
         kill $m 2>/dev/null; wait $m 2>/dev/null"
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(python())
        .arg(launcher())
        .env("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let started = Instant::now();
    while !answers_http(port) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not answer on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _watchdog: std::sync::Mutex::new(watchdog),
    }
}

/// The emulator of this test process, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(start)
}

/// How long a connect to the emulator may wait. moto accepts on one thread behind a backlog of
/// 128, and with hundreds of requests at once (the stress reruns at `FLEET_STRESS=10` open ~500)
/// a connect waits for the kernel's SYN retries, past the SDK's default 3.1 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// SDK configuration for the emulator: its endpoint, a region and static test credentials. The
/// tests' own client waits up to [`CONNECT_TIMEOUT`] to connect and sets no attempt timeout (a
/// loaded emulator answers late, not never); `fleet` itself runs with `fleet_bus::aws::timeouts`.
pub async fn sdk_config() -> SdkConfig {
    loader_at(&moto().endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// The same configuration for another endpoint (a fault proxy in front of the emulator), with
/// the SDK's default retries.
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    loader_at(endpoint).load().await
}

/// The loader behind [`sdk_config_at`]: the endpoint, a region, static test credentials and the
/// timeouts `fleet` itself sets (`fleet_bus::aws::timeouts`), for a caller to set more (the
/// fault tests turn retries off).
pub fn loader_at(endpoint: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(fleet_bus::aws::timeouts())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "fleet-test",
            "fleet-test",
            None,
            None,
            "fleet-tests",
        ))
}

/// A transport on the emulator (clients are built per test: each test has its own runtime).
pub async fn transport() -> SqsTransport {
    SqsTransport::new(&sdk_config().await)
}

/// The SQS/SNS transport on the emulator as the scenario suite tests it: where moto 5.2.5
/// differs from AWS, `Features` says so and the scenario adapts.
pub async fn test_bus() -> TestBus {
    TestBus {
        transport: Arc::new(transport().await),
        features: Features {
            name: "sqs (moto 5.2.5)",
            paused_clock: false,
            clock_slack: Duration::from_millis(500),
            exclusive_receive: false,
            or_filter: true,
            or_filter_in_body: false,
            equals_ignore_case: false,
            max_message_bytes: fleet_bus::limits::MAX_SQS_MESSAGE_BYTES,
            retention_expiry: false,
            dedup_window: false,
            validates_body_characters: false,
        },
    }
}
