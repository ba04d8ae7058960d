//! The producer keeps each FIFO group in order, whatever the call latencies and entry failures,
//! and keeps its concurrency on standard destinations.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fleet_bus::producer::{BatchProducer, HELD_BACK};
use fleet_bus::{BusError, EntryError, EntryResult, OutgoingMessage, SendReceipt, Sender};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A queue seen from the producer: every call takes a random time (seeded), some entries fail,
/// and it records the order in which messages were accepted and how many calls overlapped.
struct SlowQueue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    rng: Option<StdRng>,
    /// Bodies refused once with a service fault (worth a retry).
    fail_once: HashSet<String>,
    /// Bodies always refused with a sender fault.
    refuse: HashSet<String>,
    accepted: Vec<String>,
    calls: usize,
    in_flight: usize,
    max_in_flight: usize,
    groups_in_flight: HashMap<String, usize>,
    /// A group had entries in two calls at once.
    group_overlaps: usize,
}

impl SlowQueue {
    fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                rng: Some(StdRng::seed_from_u64(seed)),
                ..State::default()
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn accepted(&self) -> Vec<String> {
        self.state().accepted.clone()
    }
}

fn groups_of(messages: &[OutgoingMessage]) -> HashSet<String> {
    messages.iter().filter_map(|m| m.group_id.clone()).collect()
}

#[async_trait]
impl Sender for SlowQueue {
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<EntryResult<SendReceipt>>, BusError> {
        let delay = {
            let mut s = self.state();
            s.calls += 1;
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            for g in groups_of(messages) {
                let n = s.groups_in_flight.entry(g).or_default();
                *n += 1;
                if *n > 1 {
                    s.group_overlaps += 1;
                }
            }
            Duration::from_millis(s.rng.as_mut().unwrap().random_range(1..80))
        };
        tokio::time::sleep(delay).await;
        let mut s = self.state();
        s.in_flight -= 1;
        for g in groups_of(messages) {
            *s.groups_in_flight.get_mut(&g).unwrap() -= 1;
        }
        let results = messages
            .iter()
            .map(|m| {
                if s.fail_once.remove(&m.body) {
                    return Err(EntryError {
                        code: "InternalError".into(),
                        message: "try again".into(),
                        sender_fault: false,
                    });
                }
                if s.refuse.contains(&m.body) {
                    return Err(EntryError::sender("InvalidMessageContents", "refused"));
                }
                s.accepted.push(m.body.clone());
                Ok(SendReceipt {
                    message_id: format!("id-{}", s.accepted.len()),
                    sequence_number: None,
                })
            })
            .collect();
        Ok(results)
    }
}

fn in_group(group: &str, n: usize) -> Vec<OutgoingMessage> {
    (0..n)
        .map(|i| {
            OutgoingMessage::new(format!("{group}-{i:02}"))
                .group(group)
                .deduplication_id(format!("{group}-{i}"))
        })
        .collect()
}

fn bodies(group: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{group}-{i:02}")).collect()
}

#[tokio::test(start_paused = true)]
async fn a_fifo_group_arrives_in_order_despite_random_delays_and_a_failed_first_entry() {
    for seed in 0..20 {
        let queue = SlowQueue::new(seed);
        queue.state().fail_once.insert("g-00".into());
        let producer = BatchProducer::to_queue("orders.fifo", queue.clone());
        let report = producer.send_all(in_group("g", 40), |_| {}).await;
        assert!(report.failed.is_empty(), "seed {seed}: {:?}", report.failed);
        assert_eq!(report.sent.len(), 40, "seed {seed}");
        assert_eq!(queue.accepted(), bodies("g", 0..40), "seed {seed}");
        assert_eq!(queue.state().group_overlaps, 0, "seed {seed}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_entry_holds_back_the_rest_of_its_group_and_only_its_group() {
    let queue = SlowQueue::new(7);
    queue.state().refuse.insert("b-03".into());
    // Three groups interleaved, as a file of events for three customers would be.
    let (a, b, c) = (in_group("a", 10), in_group("b", 10), in_group("c", 10));
    let messages: Vec<OutgoingMessage> = (0..10)
        .flat_map(|i| [a[i].clone(), b[i].clone(), c[i].clone()])
        .collect();
    let mut settled = 0;
    let report = BatchProducer::to_queue("events.fifo", queue.clone())
        .send_all(messages.clone(), |n| settled += n)
        .await;
    assert_eq!(settled, 30);
    assert_eq!(report.sent.len(), 23);
    let failed: Vec<(&str, &str)> = report
        .failed
        .iter()
        .map(|(i, e)| (messages[*i].body.as_str(), e.code.as_str()))
        .collect();
    let mut want = vec![("b-03", "InvalidMessageContents")];
    let held = bodies("b", 4..10);
    want.extend(held.iter().map(|b| (b.as_str(), HELD_BACK)));
    assert_eq!(failed, want);
    // b-03 is entry 10 of the input (a, b, c, a, b, c, ...).
    assert!(
        report.failed[1..]
            .iter()
            .all(|(_, e)| e.message.contains("entry 10")),
        "the held-back entries name the entry that held them: {:?}",
        report.failed
    );
    let accepted = queue.accepted();
    for (group, n) in [("a", 10), ("b", 3), ("c", 10)] {
        let got: Vec<String> = accepted
            .iter()
            .filter(|m| m.starts_with(group))
            .cloned()
            .collect();
        assert_eq!(got, bodies(group, 0..n), "group {group}");
    }
}

#[tokio::test(start_paused = true)]
async fn many_fifo_groups_share_calls_and_run_calls_concurrently_one_call_per_group() {
    let queue = SlowQueue::new(3);
    let messages: Vec<OutgoingMessage> = (0..4)
        .flat_map(|i| (0..40).map(move |g| in_group(&format!("g{g}"), 4)[i].clone()))
        .collect();
    let report = BatchProducer::to_queue("orders.fifo", queue.clone())
        .send_all(messages, |_| {})
        .await;
    assert_eq!(report.sent.len(), 160);
    let s = queue.state();
    assert_eq!(s.group_overlaps, 0, "a group was in two calls at once");
    assert!(
        s.max_in_flight > 1,
        "40 groups, yet calls ran one at a time"
    );
    assert_eq!(
        s.calls, 16,
        "160 messages of 40 groups fill 16 batches of 10"
    );
    for g in 0..40 {
        let group = format!("g{g}");
        let got: Vec<&String> = s
            .accepted
            .iter()
            .filter(|m| m.rsplit_once('-').unwrap().0 == group)
            .collect();
        assert_eq!(got, bodies(&group, 0..4).iter().collect::<Vec<_>>());
    }
}

#[tokio::test(start_paused = true)]
async fn a_standard_queue_keeps_four_calls_in_flight() {
    let queue = SlowQueue::new(11);
    let messages: Vec<OutgoingMessage> = (0..80)
        .map(|i| OutgoingMessage::new(format!("m{i}")))
        .collect();
    let report = BatchProducer::to_queue("plain", queue.clone())
        .send_all(messages, |_| {})
        .await;
    assert_eq!(report.sent.len(), 80);
    let s = queue.state();
    assert_eq!(s.calls, 8);
    assert_eq!(s.max_in_flight, 4);
}

#[tokio::test(start_paused = true)]
async fn a_group_sent_to_an_embedded_fifo_queue_is_received_in_order() {
    use fleet_bus::embedded::EmbeddedBus;
    use fleet_bus::{QueueDecl, ReceiveRequest, Topology, Transport};

    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![QueueDecl::new("orders.fifo")],
        topics: vec![],
        ..Default::default()
    })
    .await
    .unwrap();
    let q = bus.queue("orders.fifo").await.unwrap();
    let report = BatchProducer::to_queue("orders.fifo", q.sender())
        .send_all(in_group("g", 40), |_| {})
        .await;
    assert_eq!((report.sent.len(), report.failed.len()), (40, 0));
    let mut received = Vec::new();
    while received.len() < 40 {
        let got = q
            .queue()
            .receive(&ReceiveRequest::new(10, Duration::from_secs(1)))
            .await
            .unwrap();
        assert!(!got.is_empty(), "only {} of 40 arrived", received.len());
        let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
        received.extend(got.into_iter().map(|m| m.body));
        q.queue().delete_batch(&receipts).await.unwrap();
    }
    assert_eq!(received, bodies("g", 0..40));
}

#[tokio::test(start_paused = true)]
async fn a_message_refused_before_sending_holds_back_the_rest_of_its_group() {
    let queue = SlowQueue::new(5);
    let mut messages = in_group("g", 5);
    messages[2].body = "x".repeat(2000);
    messages.extend(in_group("h", 3));
    let report = BatchProducer::to_queue("orders.fifo", queue.clone())
        .max_message_bytes(1000)
        .send_all(messages, |_| {})
        .await;
    let failed: Vec<(usize, &str)> = report
        .failed
        .iter()
        .map(|(i, e)| (*i, e.code.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (2, fleet_bus::producer::TOO_LARGE),
            (3, HELD_BACK),
            (4, HELD_BACK)
        ]
    );
    assert!(report.failed[1].1.message.contains("entry 2"));
    let mut want = bodies("g", 0..2);
    want.extend(bodies("h", 0..3));
    let mut accepted = queue.accepted();
    accepted.sort();
    assert_eq!(accepted, want);
}
