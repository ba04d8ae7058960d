//! Helpers for running Fleet consumers in end-to-end tests on any transport.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fleet_bus::consumer::{ConsumerConfig, Delivery, HandlerError, MessageHandler, handler_fn};
use fleet_bus::retry::{Jitter, RetryPolicy};
use fleet_bus::{
    BusError, Consumer, Declaration, QueueCounts, QueueDecl, ShutdownReport, Transport,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A set shared between a test and its handlers.
pub type Shared<T> = Arc<Mutex<T>>;

/// Locks a shared value, ignoring poisoning (a panicking handler is part of some tests).
pub fn lock<T>(s: &Shared<T>) -> std::sync::MutexGuard<'_, T> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Consumer settings for tests on a real clock: short waits, fast retries.
pub fn quick_config() -> ConsumerConfig {
    ConsumerConfig {
        wait_time: Duration::from_secs(1),
        flush_interval: Duration::from_millis(50),
        retry: RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(2),
            jitter: Jitter::None,
        },
        ..ConsumerConfig::default()
    }
}

/// Declares `name` with a dead-letter queue `name-dlq` (made unique by the caller).
///
/// # Panics
/// When the transport refuses.
pub async fn declare_with_dlq(
    t: &dyn Transport,
    name: &str,
    max_receive_count: u32,
    visibility: Duration,
) -> String {
    let fifo = name.ends_with(".fifo");
    let dlq = format!(
        "{}-dlq{}",
        name.trim_end_matches(".fifo"),
        if fifo { ".fifo" } else { "" }
    );
    t.declare(&Declaration::Queue(&QueueDecl::new(&dlq)))
        .await
        .expect("declare dlq");
    let q = QueueDecl::new(name)
        .visibility_timeout(visibility)
        .dead_letter(&dlq, max_receive_count);
    t.declare(&Declaration::Queue(&q))
        .await
        .expect("declare queue");
    dlq
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

    /// Shuts it down and returns its report.
    ///
    /// # Panics
    /// When the consumer failed.
    pub async fn stop(self) -> ShutdownReport {
        self.token.cancel();
        self.handle
            .await
            .expect("consumer task")
            .expect("consumer run")
    }
}

/// A handler that records every successfully handled payload body.
pub fn recording(seen: Shared<BTreeSet<String>>) -> MessageHandler {
    handler_fn(move |d: Delivery| {
        let seen = seen.clone();
        async move {
            let p = d.payload().map_err(HandlerError::permanent)?;
            lock(&seen).insert(p.body);
            Ok(())
        }
    })
}

/// Counts of a queue.
///
/// # Panics
/// When the queue cannot be described.
pub async fn counts(t: &dyn Transport, queue: &str) -> QueueCounts {
    t.queue(queue)
        .await
        .expect("queue")
        .admin()
        .describe()
        .await
        .expect("describe")
        .counts
}

/// Polls `done` every 200 ms for up to `limit`.
///
/// # Panics
/// When `done` is still false after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut done: F)
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
