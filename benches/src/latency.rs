//! Publish → handler latency at low load on the embedded transport: one message every
//! `interval`, Fleet's `Consumer` at its defaults against a task spawned per message.
//!
//! The publisher stamps each message just before it sends it (nanoseconds since a shared
//! `Instant`, in the body); the handler reads the clock first thing and records the difference.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{Consumer, OutgoingMessage, Transport};
use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;

use crate::embedded::{QUEUE, loaded_bus};

/// Latencies of one run, and its counts.
#[derive(Clone, Debug)]
pub struct Latencies {
    /// Messages published.
    pub published: u64,
    /// Messages the consumer received.
    pub received: u64,
    /// Messages whose latency was recorded.
    pub handled: u64,
    /// The recorded latencies, sorted.
    sorted: Vec<Duration>,
}

impl Latencies {
    /// The `q` quantile (0 to 1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

/// Where handlers record; wakes the waiter when `n` are in.
struct Recorder {
    n: usize,
    base: Instant,
    seen: Mutex<Vec<Duration>>,
    done: Notify,
}

impl Recorder {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            n,
            base: Instant::now(),
            seen: Mutex::new(Vec::with_capacity(n)),
            done: Notify::new(),
        })
    }

    fn stamp(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn record(&self, sent_nanos: u64) {
        let now = self.stamp();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push(Duration::from_nanos(now.saturating_sub(sent_nanos)));
        if seen.len() == self.n {
            self.done.notify_one();
        }
    }

    async fn wait(&self, limit: Duration) -> anyhow::Result<Vec<Duration>> {
        let finished = self.n == 0 || {
            let done = self.done.notified();
            let len = self
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            len == self.n || tokio::time::timeout(limit, done).await.is_ok()
        };
        let mut seen =
            std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner));
        anyhow::ensure!(
            finished,
            "only {} of {} messages arrived within {limit:?}",
            seen.len(),
            self.n
        );
        seen.sort_unstable();
        Ok(seen)
    }
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(interval);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// How long the handlers may lag behind the last publish before the run is called failed.
const GRACE: Duration = Duration::from_secs(30);

/// Fleet's `Consumer` at its defaults on an (initially empty) embedded queue; `n` messages
/// published one per `interval`.
///
/// # Errors
/// When the consumer fails, or not every message arrives.
pub async fn fleet(n: usize, interval: Duration) -> anyhow::Result<Latencies> {
    let bus: EmbeddedBus = loaded_bus(0).await;
    let recorder = Recorder::new(n);
    let handler = {
        let recorder = recorder.clone();
        handler_fn(move |d: Delivery| {
            let recorder = recorder.clone();
            async move {
                if let Ok(sent) = d.message.body.parse::<u64>() {
                    recorder.record(sent);
                }
                Ok(())
            }
        })
    };
    let consumer = Consumer::new(bus.clone(), QUEUE)
        .handler(handler)
        .start()
        .await?;
    let queue = bus.queue(QUEUE).await?;
    let sender = queue.sender();
    let mut tick = ticker(interval);
    for _ in 0..n {
        tick.tick().await;
        sender
            .send(OutgoingMessage::new(recorder.stamp().to_string()))
            .await?;
    }
    let sorted = recorder.wait(GRACE).await?;
    let report = consumer.shutdown().await?;
    Ok(Latencies {
        published: n as u64,
        received: report.received,
        handled: sorted.len() as u64,
        sorted,
    })
}

/// The baseline: the same publisher into a tokio mpsc channel, a task spawned per message.
///
/// # Errors
/// When not every message arrives.
pub async fn spawn_per_message(n: usize, interval: Duration) -> anyhow::Result<Latencies> {
    let recorder = Recorder::new(n);
    let (tx, mut rx) = mpsc::channel::<u64>(256);
    let consumer = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let mut received = 0u64;
            while let Some(sent) = rx.recv().await {
                received += 1;
                let recorder = recorder.clone();
                tokio::spawn(async move { recorder.record(sent) });
            }
            received
        })
    };
    let mut tick = ticker(interval);
    for _ in 0..n {
        tick.tick().await;
        tx.send(recorder.stamp()).await?;
    }
    drop(tx);
    let sorted = recorder.wait(GRACE).await?;
    let received = consumer.await?;
    Ok(Latencies {
        published: n as u64,
        received,
        handled: sorted.len() as u64,
        sorted,
    })
}
