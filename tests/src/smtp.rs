//! A real SMTP server per test (`tests/smtp/server.py`, on aiosmtpd): STARTTLS required, with a
//! self-signed certificate for 127.0.0.1 that the test trusts through `cert_pem`, AUTH required
//! for one account, every accepted message recorded, and faults scripted by the recipient's
//! local part (`fault-421-2+x@example.com`: the first two DATA attempts get 421;
//! `fault-middata-1+x@...`: the first DATA attempt's connection is dropped mid-body; see the script).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One message the server accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceptedMail {
    /// When, in seconds since the epoch.
    pub at: f64,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The `X-Fleet-Event-Id` header.
    pub event_id: Option<String>,
    /// The `Message-ID` header.
    pub message_id: Option<String>,
    /// The decoded subject.
    pub subject: String,
    /// Whether a `text/html` part came with it.
    pub has_html: bool,
    /// The id the server named in its reply (`queued as …`).
    pub queue_id: String,
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its certificate (PEM), to trust as a root (`ca_file`).
    pub cert_pem: PathBuf,
    state: PathBuf,
    /// The watchdog shell that owns the server: the server exits when the shell is gone, the
    /// shell stops the server when the test process is gone.
    watchdog: Child,
}

/// Where the script is.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py")
}

const INSTALL: &str = "aiosmtpd not found: run ./scripts/test, which installs it into .venv";

fn fresh_state_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "fleet-smtp-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

impl SmtpServer {
    /// Starts a server that accepts `user` with `password`, and waits until it listens.
    ///
    /// # Panics
    /// When the test venv's Python or aiosmtpd is missing (naming the install step), or the
    /// server does not come up within 30 s.
    pub fn start(user: &str, password: &str) -> SmtpServer {
        let python = crate::moto::python();
        assert!(
            python.exists(),
            "{INSTALL} (no Python at {})",
            python.display()
        );
        let state = fresh_state_dir();
        std::fs::create_dir_all(&state).expect("create the SMTP server's state directory");
        let parent = std::process::id();
        let script_text = format!(
            "\"$0\" \"$1\" 0 \"$2\" 2>\"$2/server.log\" & m=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
             kill $m 2>/dev/null; wait $m 2>/dev/null"
        );
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script_text)
            .arg(&python)
            .arg(script())
            .arg(&state)
            .env("SMTP_USER", user)
            .env("SMTP_PASSWORD", password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let mut server = SmtpServer {
            port: 0,
            cert_pem: state.join("cert.pem"),
            state,
            watchdog,
        };
        server.port = server.wait_ready();
        server
    }

    fn wait_ready(&mut self) -> u16 {
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(self.state.join("ready"))
                && let Ok(port) = text.trim().parse()
            {
                return port;
            }
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                let log =
                    std::fs::read_to_string(self.state.join("server.log")).unwrap_or_default();
                assert!(!log.contains("aiosmtpd not found"), "{INSTALL}");
                panic!("the SMTP server exited at start:\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the SMTP server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every message accepted so far, in order.
    pub fn accepted(&self) -> Vec<AcceptedMail> {
        let text = std::fs::read_to_string(self.state.join("accepted.jsonl")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse(l).unwrap_or_else(|| panic!("a bad line in accepted.jsonl: {l}")))
            .collect()
    }

    /// How many connections were dropped mid-DATA (`fault-middata-N+x@...`), so far.
    pub fn dropped_mid_data(&self) -> usize {
        let text = std::fs::read_to_string(self.state.join("dropped.jsonl")).unwrap_or_default();
        text.lines().filter(|l| !l.trim().is_empty()).count()
    }

    /// The messages accepted once there are at least `n`, waiting up to `within`.
    ///
    /// # Panics
    /// When fewer than `n` arrive in time.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<AcceptedMail> {
        let started = Instant::now();
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                started.elapsed() < within,
                "{} of {n} messages accepted within {within:?}",
                accepted.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's state directory (its log is `server.log`).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }
}

fn parse(line: &str) -> Option<AcceptedMail> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some(AcceptedMail {
        at: v.get("at")?.as_f64()?,
        from: text("from")?,
        to: v
            .get("to")?
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        event_id: text("event_id"),
        message_id: text("message_id"),
        subject: text("subject")?,
        has_html: v.get("has_html")?.as_bool()?,
        queue_id: text("queue_id")?,
    })
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Killing the shell is enough: the server sees its parent gone and exits.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
