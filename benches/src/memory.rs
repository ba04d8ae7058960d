//! Memory: the resident set of an idle `fleet run` with its three workers on the embedded
//! transport, and the peak resident set of a process that drains an embedded backlog.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::procfs::{Usage, usage};

/// Starts `fleet run` (orders, analytics and email, as `deploy/fleet.toml` enables them) on the
/// embedded transport with the memory mailer and the observability endpoints on a free
/// loopback port, lets it idle for `settle`, reads its memory, then stops it with SIGTERM and
/// checks it drained (exit status 0).
///
/// # Errors
/// When it fails to start, exits early, or does not drain cleanly.
pub async fn fleet_run_idle(fleet: &Path, repo: &Path, settle: Duration) -> anyhow::Result<Usage> {
    let log = std::env::temp_dir().join(format!("fleet-bench-run-{}.log", std::process::id()));
    // Through `setpriv --pdeathsig` (util-linux), which execs `fleet` in place (the pid is
    // fleet's): if this process dies without stopping it (a killed benchmark or test), the
    // kernel kills it, where `kill_on_drop` would never run.
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(fleet)
        .arg("run")
        .arg("--config")
        .arg(repo.join("deploy/fleet.toml"))
        .env("FLEET__TRANSPORT", "embedded")
        .env("FLEET__EMAIL__MAILER", "memory")
        .env("FLEET__OBSERVABILITY__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} run", fleet.display()))?;
    let pid = child.id().context("fleet run exited at once")?;
    tokio::time::sleep(settle).await;
    if let Some(status) = child.try_wait()? {
        anyhow::bail!(
            "fleet run exited with {status} while idle; its log: {}",
            log.display()
        );
    }
    let idle = usage(pid)?;
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    anyhow::ensure!(term.success(), "kill -TERM {pid} failed");
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .context("fleet run did not stop within 40 s of SIGTERM")??;
    anyhow::ensure!(
        status.success(),
        "fleet run exited with {status} after SIGTERM; its log: {}",
        log.display()
    );
    let _ = std::fs::remove_file(&log);
    Ok(idle)
}
