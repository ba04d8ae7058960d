//! The queue gauges: every `queue_stats_interval`, each running worker's queue and dead-letter
//! queue counts, read through the transport's admin `describe()` (on SQS one
//! `GetQueueAttributes` call per queue: two per worker per interval). SQS's own metrics reach
//! CloudWatch only, and late; these reach Prometheus with the rest.

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::{BusError, QueueCounts, QueueHandle, Transport};
use tokio::time::{Instant, MissedTickBehavior};

use super::metrics::{
    DEAD_LETTER_MESSAGES, OLDEST_MESSAGE_TARGET, QUEUE_DELAYED, QUEUE_IN_FLIGHT, QUEUE_VISIBLE,
    WORKER_BACKLOG,
};

/// A failing read logs once, then at most once per this period per queue (with how many
/// failures it did not log), so a long outage does not flood the logs.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// One worker's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The worker (the `worker` label: the consumer's handler name).
    pub worker: String,
    /// Its queue.
    pub queue: String,
    /// Its dead-letter queue.
    pub dead_letter_queue: String,
}

/// How the task runs.
#[derive(Clone, Copy, Debug)]
pub struct QueueStatsConfig {
    /// How often the counts are read.
    pub interval: Duration,
    /// Exported as `fleet_oldest_message_target_seconds` for each worker.
    pub oldest_message_target: Duration,
}

/// Sets the gauges of `watched` every `config.interval` until aborted. The first read happens at
/// once.
pub async fn run(transport: Arc<dyn Transport>, watched: Vec<Watched>, config: QueueStatsConfig) {
    let mut queues: Vec<Reader> = Vec::new();
    for w in &watched {
        metrics::gauge!(OLDEST_MESSAGE_TARGET, "worker" => w.worker.clone())
            .set(config.oldest_message_target.as_secs_f64());
        queues.push(Reader::new(w.clone(), Role::Queue));
        queues.push(Reader::new(w.clone(), Role::DeadLetter));
    }
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for reader in &mut queues {
            reader.read(&*transport).await;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Queue,
    DeadLetter,
}

/// One queue: its handle once resolved, and its failure log's limit.
struct Reader {
    watched: Watched,
    role: Role,
    handle: Option<QueueHandle>,
    log: LogLimit,
}

impl Reader {
    fn new(watched: Watched, role: Role) -> Self {
        Self {
            watched,
            role,
            handle: None,
            log: LogLimit::default(),
        }
    }

    fn name(&self) -> &str {
        match self.role {
            Role::Queue => &self.watched.queue,
            Role::DeadLetter => &self.watched.dead_letter_queue,
        }
    }

    async fn read(&mut self, transport: &dyn Transport) {
        match self.counts(transport).await {
            Ok(counts) => {
                self.set(counts);
                self.log.succeeded();
            }
            Err(error) => {
                // A failed read may mean a stale handle (a queue deleted and created again).
                self.handle = None;
                if let Some(suppressed) = self.log.failed(Instant::now()) {
                    tracing::warn!(worker = %self.watched.worker, queue = %self.name(), error = %fleet_bus::chain_text(&error), suppressed,
                        "cannot read the queue's counts; its gauges keep their last values");
                }
            }
        }
    }

    async fn counts(&mut self, transport: &dyn Transport) -> Result<QueueCounts, BusError> {
        let handle = match &self.handle {
            Some(h) => h.clone(),
            None => {
                let h = transport.queue(self.name()).await?;
                self.handle = Some(h.clone());
                h
            }
        };
        Ok(handle.admin().describe().await?.counts)
    }

    fn set(&self, counts: QueueCounts) {
        let (worker, queue) = (self.watched.worker.clone(), self.name().to_owned());
        match self.role {
            Role::Queue => {
                metrics::gauge!(QUEUE_VISIBLE, "worker" => worker.clone(), "queue" => queue.clone())
                    .set(counts.visible as f64);
                metrics::gauge!(QUEUE_IN_FLIGHT, "worker" => worker.clone(), "queue" => queue.clone())
                    .set(counts.in_flight as f64);
                metrics::gauge!(QUEUE_DELAYED, "worker" => worker.clone(), "queue" => queue)
                    .set(counts.delayed as f64);
                metrics::gauge!(WORKER_BACKLOG, "worker" => worker).set(counts.visible as f64);
            }
            Role::DeadLetter => {
                metrics::gauge!(DEAD_LETTER_MESSAGES, "worker" => worker, "queue" => queue)
                    .set((counts.visible + counts.in_flight) as f64);
            }
        }
    }
}

/// Whether a failure is logged: the first of a run of failures, then one per [`LOG_EVERY`].
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// A failure at `now`: `Some(failures not logged since the last line)` when it is logged.
    fn failed(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// A success ends the run: the next failure logs at once.
    fn succeeded(&mut self) {
        self.last = None;
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_logs_once_per_period_with_the_count_it_skipped() {
        let t0 = Instant::now();
        let mut log = LogLimit::default();
        assert_eq!(log.failed(t0), Some(0));
        for s in 1..4 {
            assert_eq!(log.failed(t0 + Duration::from_secs(15 * s)), None);
        }
        assert_eq!(log.failed(t0 + LOG_EVERY), Some(3));
        assert_eq!(log.failed(t0 + LOG_EVERY + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_success_ends_the_run() {
        let t0 = Instant::now();
        let mut log = LogLimit::default();
        assert_eq!(log.failed(t0), Some(0));
        assert_eq!(log.failed(t0 + Duration::from_secs(1)), None);
        log.succeeded();
        assert_eq!(log.failed(t0 + Duration::from_secs(2)), Some(0));
    }
}
