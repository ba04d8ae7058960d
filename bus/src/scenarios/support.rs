//! Test support shared by every crate's tests, on any transport: declaring a queue with its
//! dead-letter queue, loading and reading queues, waiting for a condition, and running a
//! consumer in the background.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::{Consumer, ShutdownReport};
use crate::error::BusError;
use crate::message::{Message, OutgoingMessage, ReceiveRequest};
use crate::topology::{Declaration, QueueDecl, is_fifo_name};
use crate::transport::{QueueCounts, Transport};

/// The dead-letter queue name the support functions give `name`: `name-dlq` (`.fifo` kept last).
pub fn dlq_name(name: &str) -> String {
    match name.strip_suffix(".fifo") {
        Some(stem) => format!("{stem}-dlq.fifo"),
        None => format!("{name}-dlq"),
    }
}

/// Declares `name` redriving into [`dlq_name`]`(name)` after `max_receive_count` receives;
/// returns the dead-letter queue's name.
pub async fn declare_with_dlq(
    t: &dyn Transport,
    name: &str,
    max_receive_count: u32,
    visibility: Duration,
) -> String {
    let dlq = dlq_name(name);
    debug_assert_eq!(is_fifo_name(&dlq), is_fifo_name(name));
    t.declare(&Declaration::Queue(&QueueDecl::new(&dlq)))
        .await
        .unwrap();
    let q = QueueDecl::new(name)
        .visibility_timeout(visibility)
        .dead_letter(&dlq, max_receive_count);
    t.declare(&Declaration::Queue(&q)).await.unwrap();
    dlq
}

/// An embedded bus holding `name` with its dead-letter queue (see [`declare_with_dlq`]).
pub async fn embedded_with_queue(
    name: &str,
    max_receive_count: u32,
    visibility: Duration,
) -> crate::embedded::EmbeddedBus {
    let bus = crate::embedded::EmbeddedBus::new();
    declare_with_dlq(&bus, name, max_receive_count, visibility).await;
    bus
}

/// Sends messages in batches of 10, asserting every entry is accepted.
pub async fn send_all(t: &dyn Transport, queue: &str, messages: Vec<OutgoingMessage>) {
    let q = t.queue(queue).await.unwrap();
    for chunk in messages.chunks(10) {
        let r = q.sender().send_batch(chunk).await.unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    }
}

/// A queue's counts.
pub async fn counts(t: &dyn Transport, queue: &str) -> QueueCounts {
    t.queue(queue)
        .await
        .unwrap()
        .admin()
        .describe()
        .await
        .unwrap()
        .counts
}

/// Whether a queue holds nothing: no visible, in-flight or delayed message.
pub async fn is_drained(t: &dyn Transport, queue: &str) -> bool {
    counts(t, queue).await == QueueCounts::default()
}

/// Everything visible in a queue, each message once; they stay in the queue but are held for an
/// hour (and their receive count goes up).
pub async fn peek_all(t: &dyn Transport, queue: &str) -> Vec<Message> {
    let q = t.queue(queue).await.unwrap();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let request = ReceiveRequest::new(10, Duration::ZERO).visibility(Duration::from_secs(3600));
        let got = q.queue().receive(&request).await.unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().filter(|m| seen.insert(m.id.clone())));
    }
}

/// Waits (on the test's clock, paused or not) until `done` holds, checking every `every`, for at
/// most `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, every: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Waits until `done` holds, checking every 50 ms (on a paused clock that costs nothing).
pub async fn wait_until<F, Fut>(limit: Duration, done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(limit, Duration::from_millis(50), done).await;
}

/// Starts a consumer in the background (see [`Running`]).
pub fn spawn(consumer: Consumer) -> Running {
    Running::start(consumer)
}

/// Waits until the queue holds nothing, checking every 50 ms.
pub async fn wait_drained(t: &dyn Transport, queue: &str, limit: Duration) {
    wait_for(limit, Duration::from_millis(50), || is_drained(t, queue)).await;
}

/// A consumer running in the background.
pub struct Running {
    token: CancellationToken,
    handle: JoinHandle<Result<ShutdownReport, BusError>>,
}

impl Running {
    /// Starts a consumer.
    pub fn start(consumer: Consumer) -> Self {
        let token = CancellationToken::new();
        let handle = tokio::spawn(consumer.run(token.clone()));
        Self { token, handle }
    }

    /// Shuts it down (as SIGTERM would) and returns its report.
    pub async fn stop(self) -> ShutdownReport {
        self.token.cancel();
        self.handle
            .await
            .expect("consumer task")
            .expect("consumer run")
    }
}
