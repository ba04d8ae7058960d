//! Reading a queue to the end on a transport that may answer with a sample, as SQS does: a
//! short poll asks a few of its servers and may come back empty while messages are there, and a
//! long poll returns as soon as it has some. So the reader long-polls until it has read what the
//! queue's own count says is there, asks the count again, and stops when it says nothing
//! visible is left (or when receives stop bringing anything new).

use std::collections::HashMap;
use std::time::Duration;

use fleet_bus::{BusError, Message, QueueHandle, Receipt, ReceiveRequest, VisibilityChange};

/// Each receive waits this long: a long poll asks every SQS server, and an empty queue is known
/// in about a second.
const WAIT: Duration = Duration::from_secs(1);
/// Receives in a row that bring nothing new before a read ends short of the queue's count.
const QUIET_POLLS: usize = 3;
/// SQS settles at most 10 messages per batch call.
const BATCH: usize = 10;

/// Reads the messages of one queue, holding each one read (its visibility timeout) for `hold`,
/// and settles them by id with the latest receipt.
pub(crate) struct Reader {
    queue: QueueHandle,
    hold: Duration,
    /// Every message read and not deleted, with its latest receipt (a message read again after
    /// its hold ended has a new one).
    receipts: HashMap<String, Receipt>,
}

impl Reader {
    pub(crate) fn new(queue: QueueHandle, hold: Duration) -> Self {
        Self {
            queue,
            hold,
            receipts: HashMap::new(),
        }
    }

    /// Visible messages by the queue's count.
    async fn visible(&self) -> Result<u64, BusError> {
        Ok(self.queue.admin().describe().await?.counts.visible)
    }

    /// Reads up to `limit` messages not read before: until the queue's count of visible
    /// messages has been read and a fresh count shows none left, or until [`QUIET_POLLS`]
    /// receives in a row bring nothing new.
    ///
    /// # Errors
    /// When a call fails; what was read stays held until its hold ends.
    pub(crate) async fn read(&mut self, limit: usize) -> Result<Vec<Message>, BusError> {
        let mut out: Vec<Message> = Vec::new();
        let mut target = 0;
        let mut quiet = 0;
        while out.len() < limit && quiet < QUIET_POLLS {
            if out.len() >= target {
                let visible = self.visible().await?;
                if visible == 0 {
                    break;
                }
                target = out
                    .len()
                    .saturating_add(usize::try_from(visible).unwrap_or(usize::MAX));
            }
            let n = (limit - out.len()).min(BATCH);
            let request = ReceiveRequest::new(n, WAIT).visibility(self.hold);
            let got = self.queue.queue().receive(&request).await?;
            let before = out.len();
            for m in got {
                if self
                    .receipts
                    .insert(m.id.clone(), m.receipt.clone())
                    .is_none()
                {
                    out.push(m);
                }
            }
            quiet = if out.len() > before { 0 } else { quiet + 1 };
        }
        Ok(out)
    }

    /// Deletes messages read, by id; one result per id, in order.
    pub(crate) async fn delete(&mut self, ids: &[&str]) -> Vec<Result<(), String>> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let receipts: Vec<Receipt> = chunk.iter().map(|id| self.receipt(id)).collect();
            match self.queue.queue().delete_batch(&receipts).await {
                Ok(outcomes) => {
                    for (id, r) in chunk.iter().zip(outcomes) {
                        if r.is_ok() {
                            self.receipts.remove(*id);
                        }
                        results.push(r.map_err(|e| e.to_string()));
                    }
                }
                Err(e) => {
                    let why = fleet_bus::chain_text(&e);
                    results.extend(chunk.iter().map(|_| Err(why.clone())));
                }
            }
        }
        results
    }

    /// Makes every message read and not deleted visible again at once. A failed release is
    /// only logged: those messages come back when their hold ends.
    pub(crate) async fn release_all(&mut self) {
        let held: Vec<Receipt> = self.receipts.drain().map(|(_, r)| r).collect();
        for chunk in held.chunks(BATCH) {
            let changes: Vec<VisibilityChange> = chunk
                .iter()
                .map(|r| VisibilityChange {
                    receipt: r.clone(),
                    timeout: Duration::ZERO,
                })
                .collect();
            let failed = match self.queue.queue().change_visibility_batch(&changes).await {
                Ok(outcomes) => outcomes.iter().filter(|r| r.is_err()).count(),
                Err(_) => changes.len(),
            };
            if failed > 0 {
                tracing::warn!(
                    queue = self.queue.name(),
                    failed,
                    "could not make messages visible again; they come back when their hold ends"
                );
            }
        }
    }

    fn receipt(&self, id: &str) -> Receipt {
        self.receipts
            .get(id)
            .cloned()
            .unwrap_or_else(|| Receipt::new(""))
    }
}

/// How long to hold messages while reading `count` of them: `base`, plus time to read them all
/// (about 20 ms per message), so messages read first are still held when the last is read.
pub(crate) fn hold_for(base: Duration, count: u64) -> Duration {
    let reading = Duration::from_millis(count.saturating_mul(20));
    (base + reading).min(fleet_bus::limits::MAX_VISIBILITY_TIMEOUT)
}
