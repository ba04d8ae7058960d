//! A measured process and the three-step protocol it follows on stdin and stdout, so its CPU
//! time and peak RSS are read from `/proc` at the right moments and by the same code whatever
//! it is written in:
//!
//! 1. the child sets up (loads its code, builds its clients) and prints `ready`;
//! 2. the parent reads `/proc`, then writes `go`; the child works, shuts down cleanly, and prints
//!    one JSON line with its counts;
//! 3. the parent reads `/proc` again and closes stdin; the child exits at end of input.
//!
//! A child also exits when its stdin closes early: a parent that dies leaves nothing running.

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::procfs::{Usage, usage};

/// A child process that follows the protocol.
#[derive(Debug)]
pub struct Measured {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// What one measured run of a child gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The child's JSON line.
    pub result: serde_json::Value,
    /// CPU time between `go` and the result line.
    pub cpu: Duration,
    /// Peak resident set of the whole process (VmHWM) when it printed its result, bytes.
    pub peak_rss: u64,
}

impl Measured {
    /// Starts `command` (stdin and stdout piped, stderr shared) and waits up to `limit` for its
    /// `ready`.
    ///
    /// # Errors
    /// When it cannot start, or exits or stays silent before `ready`.
    pub async fn start(name: &str, mut command: Command, limit: Duration) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        let mut measured = Self {
            name: name.to_owned(),
            child,
            stdin: Some(stdin),
            stdout,
        };
        let line = measured.line(limit).await?;
        if line.trim() != "ready" {
            bail!("{name} said {line:?} instead of ready");
        }
        Ok(measured)
    }

    /// The child's process id.
    ///
    /// # Errors
    /// When it has exited.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has exited", self.name))
    }

    /// Tells the child to work, waits up to `limit` for its result, and measures the work.
    ///
    /// # Errors
    /// When the child fails, exits early, or takes longer than `limit`.
    pub async fn run(&mut self, limit: Duration) -> anyhow::Result<Outcome> {
        let pid = self.pid()?;
        let before: Usage = usage(pid)?;
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
        let line = self.line(limit).await?;
        let after = usage(pid)?;
        let result = serde_json::from_str(&line)
            .with_context(|| format!("{} printed {line:?}, not its JSON result", self.name))?;
        Ok(Outcome {
            result,
            cpu: after.cpu.saturating_sub(before.cpu),
            peak_rss: after.peak_rss,
        })
    }

    /// Closes stdin and waits for the child to exit.
    ///
    /// # Errors
    /// When it exits with a failure or does not exit within 30 s.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .with_context(|| format!("{} did not exit after its stdin closed", self.name))??;
        anyhow::ensure!(status.success(), "{} exited with {status}", self.name);
        Ok(())
    }

    async fn line(&mut self, limit: Duration) -> anyhow::Result<String> {
        match tokio::time::timeout(limit, self.stdout.next_line()).await {
            Err(_) => bail!("{} said nothing for {limit:?}", self.name),
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => bail!("{} exited early", self.name),
            Ok(Err(e)) => Err(e).with_context(|| format!("reading {}'s output", self.name)),
        }
    }
}

/// The child's side, step 1: prints `ready` and waits for `go`. A thread then watches stdin and
/// ends the process when it closes, which is step 3 (or the parent's death).
///
/// # Errors
/// When stdin closes before `go` or stdout is gone.
pub fn ready_then_wait_for_go() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "go", "expected go on stdin, read {line:?}");
    std::thread::spawn(|| {
        let mut rest = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut rest)
            .is_ok_and(|n| n > 0)
        {
            rest.clear();
        }
        std::process::exit(0);
    });
    Ok(())
}

/// The child's side, step 2: prints its result line, then waits for stdin to close (the thread
/// started by [`ready_then_wait_for_go`] exits the process).
///
/// # Errors
/// When stdout is gone.
pub fn report(result: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{result}")?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
