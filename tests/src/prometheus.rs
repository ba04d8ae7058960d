//! A real Prometheus for tests (Debian's `prometheus` package, which `./scripts/test` installs):
//! started on a free loopback port with a generated scrape configuration and its own storage
//! directory, queried through its HTTP API, stopped when dropped. And `promtool`, from the same
//! package.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;

/// How to install what these tests need, for the message of a test that cannot find it.
pub const INSTALL: &str = "run ./scripts/test as root (it installs Debian's prometheus package, which provides promtool), or: sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; FLEET_PROMETHEUS and FLEET_PROMTOOL name other paths";

/// How long Prometheus may take to start.
const READY_WITHIN: Duration = Duration::from_secs(30);

fn tool(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found ({variable}): {INSTALL}",
        path.display()
    );
    path
}

/// The `prometheus` binary: `FLEET_PROMETHEUS`, else `/usr/bin/prometheus`.
///
/// # Panics
/// When it is missing, saying how to install it.
pub fn prometheus_binary() -> PathBuf {
    tool("FLEET_PROMETHEUS", "/usr/bin/prometheus")
}

/// The `promtool` binary: `FLEET_PROMTOOL`, else `/usr/bin/promtool`.
///
/// # Panics
/// When it is missing, saying how to install it.
pub fn promtool_binary() -> PathBuf {
    tool("FLEET_PROMTOOL", "/usr/bin/promtool")
}

/// `promtool check metrics` on an exposition text: whether it passed, and what it reported.
///
/// # Panics
/// When promtool is missing or cannot run.
pub fn check_metrics(exposition: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(promtool_binary())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool's output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// A running Prometheus scraping one target every second.
#[derive(Debug)]
pub struct Prometheus {
    /// Its HTTP API.
    pub address: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second and waits until it is
    /// ready.
    ///
    /// # Panics
    /// When Prometheus is missing or does not become ready.
    pub async fn scraping(target: SocketAddr) -> Self {
        let binary = prometheus_binary();
        let dir = std::env::temp_dir().join(fleet_bus::scenarios::unique_name("prometheus"));
        std::fs::create_dir_all(&dir).expect("create Prometheus's directory");
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(target)).expect("write the scrape configuration");
        let address = free_address();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let me = Self {
            address,
            dir,
            child,
        };
        me.wait_ready().await;
        me
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(a) = http::get(self.address, "/-/ready").await
                && a.status == 200
            {
                return;
            }
            assert!(
                started.elapsed() < READY_WITHIN,
                "Prometheus not ready within {READY_WITHIN:?}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the `data.result` array of `/api/v1/query`.
    ///
    /// # Panics
    /// When the API cannot be reached or refuses the query.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", http::encode(promql));
        let answer = http::get(self.address, &path)
            .await
            .expect("query Prometheus");
        let v: Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body));
        assert_eq!(v["status"], "success", "{promql}: {}", answer.body);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The value of a query that yields one sample, `None` when it yields none.
    ///
    /// # Panics
    /// As [`query`](Self::query), or when the value is not a number.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await;
        let sample = result.first()?;
        let text = sample["value"][1].as_str().expect("a sample's value");
        Some(text.parse().expect("a number"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scrape_config(target: SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: ['{target}']\n"
    )
}

fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("bound address")
}
