//! Sending to a FIFO queue or topic without reordering a message group.
//!
//! A batch call carries at most one message of each group, and a group has at most one call in
//! flight, so its next message goes out only after the previous one was accepted. Two rules
//! follow from how SQS and SNS answer batch calls:
//!
//! - The entries of one call succeed or fail one by one. Had two messages of a group shared a
//!   call and the first failed, the second would already be in the queue ahead of it; no retry
//!   could put them back in order.
//! - A failed entry is tried again first (the batch call retries entries that failed on the
//!   service side); if it still fails, the rest of its group is not sent at all and is reported
//!   as [`HELD_BACK`], naming the entry that held it. A message refused before sending (too
//!   large) holds back the rest of its group the same way.
//!
//! Different groups fill the same batches (up to 10 groups a call) and up to `concurrency` calls
//! run at once. One group alone therefore goes one message a call, at the latency of a call; a
//! FIFO queue hands out a group's messages one at a time anyway.

use std::collections::{HashMap, VecDeque};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{BatchProducer, HELD_BACK, SendReport};
use crate::limits::MAX_BATCH_ENTRIES;
use crate::message::{EntryError, OutgoingMessage};

/// The messages of each group waiting their turn, and which groups may send now.
struct Groups {
    /// Per group, in input order: `(input index, message)`.
    pending: Vec<VecDeque<(usize, OutgoingMessage)>>,
    /// Groups with a message waiting and no call in flight, in the order they became ready.
    ready: VecDeque<usize>,
    /// The group of each message in flight, by input index.
    in_flight: HashMap<usize, usize>,
}

impl Groups {
    fn new(messages: Vec<(usize, OutgoingMessage)>) -> Self {
        let mut slots: HashMap<String, usize> = HashMap::new();
        let mut pending: Vec<VecDeque<(usize, OutgoingMessage)>> = Vec::new();
        for (i, m) in messages {
            // A message without a group is ordered with nothing (the service will refuse it on a
            // FIFO destination, and then it holds nothing back).
            let slot = match &m.group_id {
                Some(g) => *slots.entry(g.clone()).or_insert_with(|| {
                    pending.push(VecDeque::new());
                    pending.len() - 1
                }),
                None => {
                    pending.push(VecDeque::new());
                    pending.len() - 1
                }
            };
            pending[slot].push_back((i, m));
        }
        Self {
            ready: (0..pending.len()).collect(),
            pending,
            in_flight: HashMap::new(),
        }
    }

    /// The next batch: the first waiting message of up to 10 ready groups, within `max_bytes`.
    fn next_batch(&mut self, max_bytes: usize) -> Vec<(usize, OutgoingMessage)> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH_ENTRIES {
            let Some(&slot) = self.ready.front() else {
                break;
            };
            let Some((_, head)) = self.pending[slot].front() else {
                self.ready.pop_front();
                continue;
            };
            let size = head.size();
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            self.ready.pop_front();
            if let Some((i, m)) = self.pending[slot].pop_front() {
                bytes += size;
                self.in_flight.insert(i, slot);
                batch.push((i, m));
            }
        }
        batch
    }

    /// The message at `index` was accepted: its group may send its next one.
    fn accepted(&mut self, index: usize) {
        if let Some(slot) = self.in_flight.remove(&index)
            && !self.pending[slot].is_empty()
        {
            self.ready.push_back(slot);
        }
    }

    /// The message at `index` failed: the rest of its group is not sent; returns it.
    fn failed(&mut self, index: usize) -> Vec<(usize, OutgoingMessage)> {
        self.in_flight
            .remove(&index)
            .map(|slot| self.pending[slot].drain(..).collect())
            .unwrap_or_default()
    }
}

fn held_back(failed: usize) -> EntryError {
    EntryError {
        code: HELD_BACK.to_owned(),
        message: format!(
            "held back behind a failed entry of its group: entry {failed} was not sent, so this \
             one was not sent after it; send the group again from entry {failed}"
        ),
        // Not the request's fault: sent again in order, after the failed entry, it can succeed.
        sender_fault: false,
    }
}

/// Reports as held back the messages of `ready` that come after a message of their group that
/// was refused before sending (`refused`: group to its first refused input index); returns the
/// rest.
pub(super) fn hold_back(
    ready: Vec<(usize, OutgoingMessage)>,
    refused: &HashMap<String, usize>,
    report: &mut SendReport,
    progress: &mut impl FnMut(usize),
) -> Vec<(usize, OutgoingMessage)> {
    let mut held = 0;
    let mut rest = Vec::with_capacity(ready.len());
    for (i, m) in ready {
        match m.group_id.as_ref().and_then(|g| refused.get(g)) {
            Some(&first) if first < i => {
                report.failed.push((i, held_back(first)));
                held += 1;
            }
            _ => rest.push((i, m)),
        }
    }
    if held > 0 {
        progress(held);
    }
    rest
}

/// Sends `ready` group by group in order; records outcomes in `report`.
pub(super) async fn send_in_group_order(
    producer: &BatchProducer,
    ready: Vec<(usize, OutgoingMessage)>,
    report: &mut SendReport,
    progress: &mut impl FnMut(usize),
) {
    let mut groups = Groups::new(ready);
    let mut calls = FuturesUnordered::new();
    loop {
        while calls.len() < producer.concurrency {
            let batch = groups.next_batch(producer.batch_limit());
            if batch.is_empty() {
                break;
            }
            calls.push(producer.send_batch(batch));
        }
        let Some(results) = calls.next().await else {
            break;
        };
        let mut settled = results.len();
        for (i, r) in results {
            match r {
                Ok(receipt) => {
                    groups.accepted(i);
                    report.sent.push((i, receipt));
                }
                Err(e) => {
                    report.failed.push((i, e));
                    for (j, _) in groups.failed(i) {
                        report.failed.push((j, held_back(i)));
                        settled += 1;
                    }
                }
            }
        }
        progress(settled);
    }
}
