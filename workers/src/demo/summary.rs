//! The demo's result: per queue, what was expected, processed, dead-lettered and lost.

use fleet_bus::ShutdownReport;
use fleet_bus::consumer::dead_letter::DeadLetterReason;

/// How one queue fared.
#[derive(Clone, Debug, Default)]
pub struct QueueSummary {
    /// The queue.
    pub name: String,
    /// Its dead-letter queue.
    pub dead_letter_queue: String,
    /// Events it subscribes to, by the demo's own table of event types per queue (not by the
    /// filter matcher that routed them).
    pub expected: usize,
    /// Events its handler processed.
    pub processed: usize,
    /// Events found in its dead-letter queue, with their reasons.
    pub dead_letters: Vec<(String, DeadLetterReason)>,
    /// Expected events neither processed nor dead-lettered.
    pub lost: usize,
    /// Events that arrived although the filter should have kept them out.
    pub unexpected: usize,
    /// The consumer's own accounting.
    pub report: ShutdownReport,
}

/// The demo's result.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    /// Events published.
    pub published: usize,
    /// Events made to fail once.
    pub flaky: usize,
    /// Per queue.
    pub queues: Vec<QueueSummary>,
}

impl DemoSummary {
    /// Deliveries lost across all queues.
    pub fn lost(&self) -> usize {
        self.queues.iter().map(|q| q.lost + q.unexpected).sum()
    }
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
        writeln!(
            f,
            "Fleet demo on the embedded transport (topology: deploy/topology.toml)"
        )?;
        writeln!(f, "topic fleet-events -> {}", names.join(", "))?;
        writeln!(f)?;
        writeln!(
            f,
            "published      {} events ({} fail once, 1 poison)",
            self.published, self.flaky
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<18}{:>10}{:>11}{:>9}{:>15}{:>6}",
            "queue", "expected", "processed", "retried", "dead-lettered", "lost"
        )?;
        for q in &self.queues {
            writeln!(
                f,
                "{:<18}{:>10}{:>11}{:>9}{:>15}{:>6}",
                q.name,
                q.expected,
                q.processed,
                q.report.retried,
                q.dead_letters.len(),
                q.lost + q.unexpected
            )?;
        }
        writeln!(f)?;
        for q in &self.queues {
            for (id, r) in &q.dead_letters {
                writeln!(
                    f,
                    "dead letter    {}  {id}  {} (attempt {}): {}",
                    q.dead_letter_queue, r.kind, r.attempt, r.message
                )?;
            }
        }
        let processed: usize = self.queues.iter().map(|q| q.processed).sum();
        let retried: u64 = self.queues.iter().map(|q| q.report.retried).sum();
        let dead: usize = self.queues.iter().map(|q| q.dead_letters.len()).sum();
        writeln!(f)?;
        write!(
            f,
            "published {} | processed {processed} | retried {retried} | dead-lettered {dead} | lost {}",
            self.published,
            self.lost()
        )
    }
}
