//! The indexed store against the store it replaced: a scan of every message on every call,
//! slow but plainly right. Random operations on both must give the same answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::{Settings, Store, Stored};
use crate::limits::{FIFO_DEDUP_WINDOW, MAX_VISIBILITY_TIMEOUT};
use crate::message::{OutgoingMessage, Receipt};
use crate::transport::QueueCounts;

/// The store before the indexes, reduced to what the comparison needs.
struct ScanStore {
    uid: u64,
    settings: Settings,
    messages: BTreeMap<u64, Stored>,
    dedup: HashMap<String, Instant>,
    next_seq: u64,
    next_nonce: u64,
}

/// What one receive gave: (body, receipt, receive count) of each message, the bodies taken out
/// for the redrive, and the next change when nothing was received.
type Pass = (Vec<(String, String, u32)>, Vec<Stored>, Option<Instant>);

impl ScanStore {
    fn expire(&mut self, now: Instant) {
        let retention = self.settings.retention;
        self.messages.retain(|_, m| m.enqueued_at + retention > now);
        self.dedup.retain(|_, at| *at + FIFO_DEDUP_WINDOW > now);
    }

    fn send(&mut self, m: &OutgoingMessage, dedup_id: Option<String>, now: Instant) -> bool {
        self.expire(now);
        if let Some(id) = &dedup_id
            && self.dedup.contains_key(id)
        {
            return false;
        }
        let delay = m.delay.unwrap_or(self.settings.delay);
        let stored = Stored {
            id: m.body.clone(),
            body: m.body.clone(),
            attributes: super::stored_attributes(&m.attributes),
            trace_header: None,
            group_id: m.group_id.clone(),
            deduplication_id: dedup_id.clone(),
            sent_at: std::time::SystemTime::now(),
            enqueued_at: now,
            visible_at: now + delay,
            receive_count: 0,
            first_received_at: None,
            received_at: None,
            nonce: None,
        };
        self.messages.insert(self.next_seq, stored);
        self.next_seq += 1;
        if let Some(id) = dedup_id {
            self.dedup.insert(id, now);
        }
        true
    }

    fn accept_dead_letter(&mut self, mut m: Stored, now: Instant) {
        m.visible_at = now;
        m.receive_count = 0;
        m.received_at = None;
        m.nonce = None;
        self.messages.insert(self.next_seq, m);
        self.next_seq += 1;
    }

    fn receive(&mut self, max: usize, visibility: Duration, now: Instant) -> Pass {
        self.expire(now);
        let max_receives = self.settings.redrive.as_ref().map(|(_, n)| *n);
        let fifo = self.settings.fifo;
        let locked: HashSet<String> = self
            .messages
            .values()
            .filter(|m| fifo && m.in_flight(now))
            .filter_map(|m| m.group_id.clone())
            .collect();
        let mut blocked: HashSet<String> = HashSet::new();
        let (mut got, mut dead, mut next) = (Vec::new(), Vec::new(), None);
        let seqs: Vec<u64> = self.messages.keys().copied().collect();
        for seq in seqs {
            if got.len() >= max {
                break;
            }
            let m = &self.messages[&seq];
            let group = if fifo { m.group_id.clone() } else { None };
            if let Some(g) = &group
                && (blocked.contains(g) || locked.contains(g))
            {
                blocked.insert(g.clone());
                continue;
            }
            if m.visible_at > now {
                next = Some(next.map_or(m.visible_at, |t: Instant| t.min(m.visible_at)));
                blocked.extend(group);
                continue;
            }
            if max_receives.is_some_and(|n| m.receive_count >= n) {
                dead.extend(self.messages.remove(&seq));
                continue;
            }
            let nonce = self.next_nonce;
            self.next_nonce += 1;
            let m = self.messages.get_mut(&seq).expect("present");
            m.receive_count += 1;
            m.received_at = Some(now);
            m.visible_at = now + visibility;
            m.nonce = Some(nonce);
            let receipt = format!("emb-{}-{seq}-{nonce}", self.uid);
            got.push((m.body.clone(), receipt, m.receive_count));
        }
        if got.is_empty() {
            next = self
                .messages
                .values()
                .map(|m| m.visible_at)
                .filter(|t| *t > now)
                .min();
        }
        (got, dead, next)
    }

    fn locate(&self, receipt: &str) -> Result<Option<u64>, String> {
        let parts: Vec<u64> = receipt
            .trim_start_matches("emb-")
            .split('-')
            .filter_map(|p| p.parse().ok())
            .collect();
        match self.messages.get(&parts[1]) {
            None => Ok(None),
            Some(m) if m.nonce == Some(parts[2]) => Ok(Some(parts[1])),
            Some(_) => Err("ReceiptHandleIsInvalid".into()),
        }
    }

    fn delete(&mut self, receipt: &str) -> Result<(), String> {
        if let Some(seq) = self.locate(receipt)? {
            self.messages.remove(&seq);
        }
        Ok(())
    }

    fn change_visibility(
        &mut self,
        receipt: &str,
        t: Duration,
        now: Instant,
    ) -> Result<(), String> {
        let seq = self.locate(receipt)?.ok_or("ReceiptHandleIsInvalid")?;
        let m = self.messages.get_mut(&seq).expect("located");
        if !m.in_flight(now) {
            return Err("MessageNotInflight".into());
        }
        let received = m.received_at.unwrap_or(now);
        if t > MAX_VISIBILITY_TIMEOUT || now + t > received + MAX_VISIBILITY_TIMEOUT {
            return Err("InvalidParameterValue".into());
        }
        m.visible_at = now + t;
        Ok(())
    }

    fn counts(&mut self, now: Instant) -> QueueCounts {
        self.expire(now);
        let mut c = QueueCounts::default();
        for m in self.messages.values() {
            if m.visible_at <= now {
                c.visible += 1;
            } else if m.nonce.is_some() {
                c.in_flight += 1;
            } else {
                c.delayed += 1;
            }
        }
        c
    }
}

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::try_from(self.below(from.len() as u64)).expect("small")]
    }
}

fn settings(fifo: bool) -> Settings {
    Settings {
        fifo,
        visibility_timeout: Duration::from_secs(30),
        delay: Duration::ZERO,
        retention: Duration::from_secs(600),
        content_based_deduplication: false,
        redrive: Some(("dlq".into(), 3)),
    }
}

fn run(fifo: bool, seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut now = Instant::now();
    let mut indexed = Store::new(7, settings(fifo));
    let mut scan = ScanStore {
        uid: 7,
        settings: settings(fifo),
        messages: BTreeMap::new(),
        dedup: HashMap::new(),
        next_seq: 1,
        next_nonce: 1,
    };
    let mut receipts: Vec<String> = Vec::new();
    let secs = Duration::from_secs;
    for step in 0..steps {
        let at = format!("seed {seed}, step {step}");
        match rng.below(10) {
            0..=2 => {
                let mut m = OutgoingMessage::new(format!("m{step}"));
                if fifo {
                    m = m
                        .group(format!("g{}", rng.below(4)))
                        .deduplication_id(format!("d{}", rng.below(40)));
                } else {
                    m.delay = Some(rng.pick(&[secs(0), secs(0), secs(0), secs(5)]));
                }
                let dedup_id = indexed.check_fifo(&m).expect("valid");
                let before = indexed.next_seq;
                indexed.send(&m, now).expect("sent");
                let stored = indexed.next_seq > before;
                assert_eq!(stored, scan.send(&m, dedup_id, now), "{at}: send");
            }
            3..=5 => {
                let max = usize::try_from(rng.below(10) + 1).expect("small");
                let visibility = rng.pick(&[secs(0), secs(1), secs(30), secs(30)]);
                let got = indexed.receive(max, visibility, now);
                let (want, want_dead, want_next) = scan.receive(max, visibility, now);
                let mine: Vec<_> = got
                    .messages
                    .iter()
                    .map(|m| {
                        let r = m.receipt.as_str().to_owned();
                        (m.body.clone(), r, m.system.receive_count)
                    })
                    .collect();
                assert_eq!(mine, want, "{at}: received");
                let bodies = |d: &[Stored]| d.iter().map(|m| m.body.clone()).collect::<Vec<_>>();
                assert_eq!(bodies(&got.dead), bodies(&want_dead), "{at}: dead");
                if mine.is_empty() {
                    assert_eq!(got.next_change, want_next, "{at}: next change");
                }
                receipts.extend(mine.into_iter().map(|(_, r, _)| r));
                // The queue is its own dead-letter queue: ages carry over.
                for (a, b) in got.dead.into_iter().zip(want_dead) {
                    indexed.accept_dead_letter(a, now);
                    scan.accept_dead_letter(b, now);
                }
            }
            6 if !receipts.is_empty() => {
                let r = receipts[usize::try_from(rng.below(receipts.len() as u64)).expect("small")]
                    .clone();
                let mine = indexed.delete(&Receipt::new(r.clone())).map_err(|e| e.code);
                assert_eq!(mine, scan.delete(&r), "{at}: delete {r}");
            }
            7 if !receipts.is_empty() => {
                let r = receipts[usize::try_from(rng.below(receipts.len() as u64)).expect("small")]
                    .clone();
                let t = rng.pick(&[secs(0), secs(10), secs(13 * 3600)]);
                let mine = indexed
                    .change_visibility(&Receipt::new(r.clone()), t, now)
                    .map_err(|e| e.code);
                assert_eq!(mine, scan.change_visibility(&r, t, now), "{at}: change {r}");
            }
            8 => {
                assert_eq!(indexed.counts(now), scan.counts(now), "{at}: counts");
            }
            _ => {
                now += rng.pick(&[
                    Duration::ZERO,
                    Duration::from_millis(1),
                    secs(1),
                    secs(5),
                    secs(30),
                    secs(200),
                ]);
            }
        }
    }
}

#[test]
fn standard_queue_answers_as_the_scan_did() {
    for seed in 1..=20 {
        run(false, seed, 3_000);
    }
}

#[test]
fn fifo_queue_answers_as_the_scan_did() {
    for seed in 1..=20 {
        run(true, seed, 3_000);
    }
}
