//! moto_server for the SQS measurements, started the way the tests start it (`fleet-tests`'
//! `moto.rs`): the venv's Python runs `tests/moto/launcher.py`, which is moto's own server with
//! its SQS clock made cheap, on a free loopback port. A watchdog shell stops it if this process
//! dies; dropping [`Moto`] stops it at once.
//!
//! (fleet-benches does not depend on fleet-tests for this: fleet-tests turns on tokio's
//! `test-util`, which puts a clock check into every `tokio::time::Instant::now()` of the
//! engine being measured.)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running emulator.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    server: Child,
}

impl Moto {
    /// Starts moto_server (`moto_server`, the venv's, whose `python` sits beside it) and waits
    /// until it answers.
    ///
    /// # Errors
    /// When it is not installed, or does not answer within 60 s.
    pub fn start(moto_server: &Path, repo: &Path) -> anyhow::Result<Self> {
        if !moto_server.exists() {
            bail!(
                "moto_server not found at {}: scripts/bench (or scripts/test) installs it into .venv",
                moto_server.display()
            );
        }
        let python = moto_server.with_file_name("python");
        let launcher: PathBuf = repo.join("tests/moto/launcher.py");
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = Command::new(&python)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), launcher.display()))?;
        let watchdog = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {moto} 2>/dev/null; do sleep 0.5; done; kill {moto} 2>/dev/null",
            parent = std::process::id(),
            moto = server.id()
        );
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto's watchdog")?;
        let moto = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            server,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("moto_server did not answer on port {port} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
