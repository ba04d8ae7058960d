//! Helpers for running Fleet consumers in end-to-end tests on any transport.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fleet_bus::consumer::{ConsumerConfig, Delivery, HandlerError, MessageHandler, handler_fn};
use fleet_bus::retry::{Jitter, RetryPolicy};
pub use fleet_bus::scenarios::support::{self, Running, counts, declare_with_dlq};

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

/// Polls `done` every 200 ms for up to `limit` (real time: these tests run against moto).
pub async fn eventually<F, Fut>(limit: Duration, done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    support::wait_for(limit, Duration::from_millis(200), done).await;
}
