//! The email worker's handler with the in-memory mailer and idempotency store: sent once, a
//! redelivery or duplicate acks without sending, a stale claim is `delivery_unknown` (never
//! resent), a concurrent delivery waits, a failed send releases its claim, a rejected one is
//! permanent with the address masked, a paused account closes the gate, a failed mark is retried
//! within the lease and otherwise keeps the claim.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fleet_bus::consumer::{FailureKind, HandlerError, PauseGate};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::idempotency::{
    Claim, Claimed, Held, HolderToken, IdempotencyError, IdempotencyStore, MemoryIdempotencyStore,
    payload_hash,
};
use fleet_bus::producer::BatchProducer;
use fleet_bus::{Topology, Transport};
use fleet_schemas::{EmailRequested, Envelope};
use fleet_workers::email::privacy::has_full_address;
use fleet_workers::email::worker::KEY_PREFIX;
use fleet_workers::email::{
    EmailError, EmailSettings, EmailWorker, Handled, MemoryMailer, SendError, SendRate, Templates,
};

const TOPOLOGY: &str = r#"
[[topic]]
name = "events"
[[topic.subscription]]
queue = "sink"
raw_delivery = true
[[queue]]
name = "sink"
dead_letter = { queue = "sink-dlq", max_receive_count = 5 }
"#;

struct Setup {
    worker: EmailWorker,
    mailer: Arc<MemoryMailer>,
    store: Arc<dyn IdempotencyStore>,
    gate: PauseGate,
    bus: EmbeddedBus,
}

async fn setup_with(store: Arc<dyn IdempotencyStore>, settings: EmailSettings) -> Setup {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology::from_toml(TOPOLOGY).unwrap())
        .await
        .unwrap();
    let templates = Templates::from_files(
        "tests",
        [
            ("hello/subject.txt", "Hello {{ name }}"),
            ("hello/text.txt", "Hi {{ name }}"),
        ],
    );
    let mailer = Arc::new(MemoryMailer::new());
    let gate = PauseGate::new();
    let events = BatchProducer::to_topic("events", bus.topic("events").await.unwrap());
    let worker = EmailWorker::new(
        Arc::new(templates),
        mailer.clone(),
        store.clone(),
        Arc::new(SendRate::new(1000.0, 10)),
        events,
        gate.clone(),
        settings,
    );
    Setup {
        worker,
        mailer,
        store,
        gate,
        bus,
    }
}

async fn setup() -> Setup {
    setup_with(
        Arc::new(MemoryIdempotencyStore::new()),
        EmailSettings::default(),
    )
    .await
}

fn request(to: &str) -> Envelope<EmailRequested> {
    let payload: EmailRequested = serde_json::from_value(serde_json::json!({
        "to": to,
        "content": {"kind": "template", "template": "hello", "data": {"name": "Ada"}},
    }))
    .unwrap();
    Envelope::new(payload, "tests")
}

fn claim_of(r: &Envelope<EmailRequested>, now_ms: u64, lease_ms: u64) -> Claim {
    Claim {
        key: format!("{KEY_PREFIX}{}", r.header.id),
        validation: payload_hash(&serde_json::to_value(&r.payload).unwrap()),
        holder: HolderToken::new(),
        now_ms,
        in_progress_until_ms: now_ms + lease_ms,
        expiration: now_ms / 1000 + 3600,
        takeover: true,
    }
}

fn now_ms() -> u64 {
    fleet_bus::idempotency::Clock::system().now_ms()
}

#[tokio::test]
async fn a_request_is_sent_once_and_a_redelivery_acks_without_sending() {
    let s = setup().await;
    let r = request("ada@example.com");
    let first = s.worker.handle(&r).await.unwrap();
    let Handled::Sent(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(id, "memory-1");
    assert_eq!(
        s.worker.handle(&r).await.unwrap(),
        Handled::AlreadySent("memory-1".into())
    );
    assert_eq!(s.mailer.accepted().len(), 1);
    assert_eq!(s.mailer.attempts(), 1);
    let sent = &s.mailer.accepted()[0].email;
    assert_eq!(
        (sent.subject.as_str(), sent.event_id.as_str()),
        ("Hello Ada", r.header.id.as_str())
    );
}

#[tokio::test]
async fn a_stale_claim_is_delivery_unknown_and_never_resent() {
    let s = setup().await;
    let r = request("ada@example.com");
    // A process claimed it a minute ago with a 10 s lease and died before marking it sent.
    let t = now_ms();
    let dead = claim_of(&r, t - 60_000, 10_000);
    assert_eq!(s.store.claim(&dead).await.unwrap(), Claimed::Acquired);
    let e = s.worker.handle(&r).await.unwrap_err();
    assert!(matches!(e, EmailError::DeliveryUnknown { .. }), "{e}");
    assert_eq!(e.label(), "delivery_unknown");
    let h: HandlerError = e.into();
    assert_eq!(h.kind(), FailureKind::Permanent);
    assert_eq!(s.mailer.attempts(), 0, "never resent");
}

#[tokio::test]
async fn a_delivery_finding_a_live_claim_waits_for_it() {
    let s = setup().await;
    let r = request("ada@example.com");
    let live = claim_of(&r, now_ms(), 30_000);
    assert_eq!(s.store.claim(&live).await.unwrap(), Claimed::Acquired);
    let e = s.worker.handle(&r).await.unwrap_err();
    let EmailError::InProgressElsewhere { wait, .. } = &e else {
        panic!("{e}")
    };
    assert!(
        *wait > Duration::from_secs(25) && *wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    let h: HandlerError = e.into();
    assert_eq!(h.kind(), FailureKind::Transient);
    assert!(h.requested_delay().unwrap() > Duration::from_secs(25));
    // The other delivery marks it sent: this one then acks without sending.
    s.store
        .complete(
            &live.held(),
            Some(r#"{"provider_id":"p-1","mailer":"ses"}"#),
            now_ms() / 1000 + 3600,
        )
        .await
        .unwrap();
    assert_eq!(
        s.worker.handle(&r).await.unwrap(),
        Handled::AlreadySent("p-1".into())
    );
    assert_eq!(s.mailer.attempts(), 0);
}

#[tokio::test]
async fn a_failed_send_releases_its_claim_so_the_retry_sends() {
    let s = setup().await;
    let r = request("bob@example.com");
    s.mailer.fail_next(
        "bob@example.com",
        [SendError::transient("smtp_421", "421 4.3.2 try later")],
    );
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(e.label(), "send_failed");
    assert_eq!(HandlerError::from(e).kind(), FailureKind::Transient);
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    assert_eq!((s.mailer.attempts(), s.mailer.accepted().len()), (2, 1));
}

#[tokio::test]
async fn a_rejected_send_is_permanent_and_names_no_address() {
    let s = setup().await;
    let r = request("bob@example.com");
    s.mailer.fail_next(
        "bob@example.com",
        [SendError::rejected(
            "smtp_550",
            "550 5.1.1 <bob@example.com>: Recipient address rejected",
        )],
    );
    let e = s.worker.handle(&r).await.unwrap_err();
    let h: HandlerError = e.into();
    assert_eq!(
        (h.kind(), h.label()),
        (FailureKind::Permanent, "email_rejected")
    );
    let text = h.to_string();
    assert!(
        text.contains("b***@example.com") && !has_full_address(&text),
        "{text}"
    );
}

#[tokio::test]
async fn a_paused_account_closes_the_gate_until_the_probe_and_is_retried() {
    let settings = EmailSettings {
        pause_probe: Duration::from_millis(300),
        ..EmailSettings::default()
    };
    let s = setup_with(Arc::new(MemoryIdempotencyStore::new()), settings).await;
    let r = request("ada@example.com");
    s.mailer.fail_next(
        "ada@example.com",
        [SendError::paused(
            "SendingPausedException",
            "sending is paused for this account",
        )],
    );
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(e.label(), "sending_paused");
    let h: HandlerError = e.into();
    assert_eq!(
        h.kind(),
        FailureKind::Transient,
        "never dead-lettered for a pause"
    );
    assert!(s.gate.paused().unwrap().contains("SendingPausedException"));
    tokio::time::timeout(Duration::from_secs(5), s.gate.opened())
        .await
        .unwrap();
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
}

#[tokio::test]
async fn a_template_that_cannot_render_is_permanent_and_sends_nothing() {
    let s = setup().await;
    let payload: EmailRequested = serde_json::from_value(serde_json::json!({
        "to": "ada@example.com",
        "content": {"kind": "template", "template": "nope", "data": {}},
    }))
    .unwrap();
    let e = s
        .worker
        .handle(&Envelope::new(payload, "tests"))
        .await
        .unwrap_err();
    assert_eq!(e.label(), "template_missing");
    assert_eq!(HandlerError::from(e).kind(), FailureKind::Permanent);
    assert_eq!(s.mailer.attempts(), 0);
}

/// The in-memory store whose `complete` fails the first `failures` times, and `release` the
/// first `release_failures` times; the first `lost_claim_answers` claims are written and then
/// answered with an error, as when a write lands and its answer is lost; the first
/// `hung_claims` are written and then answered only after a minute (a stalled connection).
struct FailingMark {
    inner: MemoryIdempotencyStore,
    failures: AtomicU32,
    release_failures: AtomicU32,
    lost_claim_answers: AtomicU32,
    hung_claims: AtomicU32,
}

impl FailingMark {
    fn new(failures: u32, release_failures: u32, lost_claim_answers: u32) -> Self {
        Self {
            inner: MemoryIdempotencyStore::new(),
            failures: AtomicU32::new(failures),
            release_failures: AtomicU32::new(release_failures),
            lost_claim_answers: AtomicU32::new(lost_claim_answers),
            hung_claims: AtomicU32::new(0),
        }
    }

    fn hanging_claims(self, n: u32) -> Self {
        self.hung_claims.store(n, Ordering::SeqCst);
        self
    }
}

#[async_trait]
impl IdempotencyStore for FailingMark {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, IdempotencyError> {
        let claimed = self.inner.claim(claim).await?;
        if self
            .hung_claims
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        if self
            .lost_claim_answers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(IdempotencyError::Unavailable {
                source: "connection reset after the request was sent".into(),
            });
        }
        Ok(claimed)
    }
    async fn complete(
        &self,
        held: &Held,
        data: Option<&str>,
        expiration: u64,
    ) -> Result<(), IdempotencyError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(IdempotencyError::Unavailable {
                source: "throttled".into(),
            });
        }
        self.inner.complete(held, data, expiration).await
    }
    async fn release(&self, held: &Held) -> Result<(), IdempotencyError> {
        if self
            .release_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(IdempotencyError::Unavailable {
                source: "throttled".into(),
            });
        }
        self.inner.release(held).await
    }
}

#[tokio::test]
async fn a_failed_release_is_retried_so_the_retry_sends_instead_of_delivery_unknown() {
    // The chaos runs: a release lost to an outage left the claim in progress, so the retry of a
    // request that was never sent waited for the lease and was dead-lettered delivery_unknown.
    let store = Arc::new(FailingMark::new(0, 3, 0));
    let s = setup_with(store, EmailSettings::default()).await;
    let r = request("bob@example.com");
    s.mailer.fail_next(
        "bob@example.com",
        [SendError::transient("smtp_421", "421 4.3.2 try later")],
    );
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(e.label(), "send_failed");
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    assert_eq!((s.mailer.attempts(), s.mailer.accepted().len()), (2, 1));
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_released_so_the_retry_sends_instead_of_delivery_unknown()
{
    // Long chaos run 1 of 44131f1: a claim written to DynamoDB whose answer a connection reset
    // lost failed the handler; the retry, with a new holder, found that claim in progress,
    // waited for its lease, and dead-lettered a request never sent as delivery_unknown.
    let store = Arc::new(FailingMark::new(0, 0, 1));
    let s = setup_with(store, EmailSettings::default()).await;
    let r = request("bob@example.com");
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(HandlerError::from(e).kind(), FailureKind::Transient);
    assert_eq!(s.mailer.attempts(), 0, "nothing was sent");
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    assert_eq!((s.mailer.attempts(), s.mailer.accepted().len()), (1, 1));
}

/// The engine cancels a handler whose lease it lost (or at the drain's hard stop) by dropping
/// it. Dropped while its claim was on the wire, the claim it may hold is released, so the
/// redelivery sends instead of finding it in progress and, past its lease, dead-lettering a
/// request never sent as delivery_unknown (review of aa4d6fe).
#[tokio::test]
async fn a_handler_dropped_while_it_claims_releases_its_claim() {
    let store = Arc::new(FailingMark::new(0, 0, 0).hanging_claims(1));
    let s = setup_with(store, EmailSettings::default()).await;
    let r = request("bob@example.com");
    let cut = tokio::time::timeout(Duration::from_millis(200), s.worker.handle(&r)).await;
    assert!(cut.is_err(), "the claim hangs: the handler is dropped");
    // The release runs on its own once the handler is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    assert_eq!((s.mailer.attempts(), s.mailer.accepted().len()), (1, 1));
}

/// A handler dropped while it claims keeps its send slot until its claim is released: with one
/// send in flight, the next request does not claim and send while a claim may still be open
/// (one crash then could leave two delivery_unknowns; review of f00fced).
#[tokio::test]
async fn a_handler_dropped_while_it_claims_keeps_its_slot_until_the_release() {
    // The claim lands and hangs; the release then fails three times (100, 200, 400 ms pauses).
    let store = Arc::new(FailingMark::new(0, 3, 0).hanging_claims(1));
    let s = setup_with(store, EmailSettings::default()).await;
    let a = request("ada@example.com");
    let cut = tokio::time::timeout(Duration::from_millis(100), s.worker.handle(&a)).await;
    assert!(cut.is_err(), "the claim hangs: the handler is dropped");
    let b = request("bob@example.com");
    let early = tokio::time::timeout(Duration::from_millis(200), s.worker.handle(&b)).await;
    assert!(
        early.is_err(),
        "the slot is held while the release is tried"
    );
    assert_eq!(s.mailer.attempts(), 0);
    assert!(matches!(
        s.worker.handle(&b).await.unwrap(),
        Handled::Sent(_)
    ));
    assert!(matches!(
        s.worker.handle(&a).await.unwrap(),
        Handled::Sent(_)
    ));
}

/// Dropped while it marks a sent email, the mark still lands, so a redelivery acks without
/// sending instead of being dead-lettered as delivery_unknown (review of aa4d6fe).
#[tokio::test]
async fn a_handler_dropped_while_it_marks_a_sent_email_still_marks_it() {
    // The mark fails three times (pauses of 100, 200 and 400 ms before it lands).
    let store = Arc::new(FailingMark::new(3, 0, 0));
    let s = setup_with(store, EmailSettings::default()).await;
    let r = request("ada@example.com");
    let cut = tokio::time::timeout(Duration::from_millis(150), s.worker.handle(&r)).await;
    assert!(cut.is_err(), "dropped while the mark is retried");
    assert_eq!(s.mailer.accepted().len(), 1, "sent before the drop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::AlreadySent(_)
    ));
    assert_eq!(s.mailer.attempts(), 1, "sent once");
}

#[tokio::test]
async fn a_failed_mark_is_retried_within_the_lease() {
    let store = Arc::new(FailingMark::new(3, 0, 0));
    let s = setup_with(store, EmailSettings::default()).await;
    let r = request("ada@example.com");
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::AlreadySent(_)
    ));
    assert_eq!(s.mailer.attempts(), 1);
}

#[tokio::test]
async fn a_mark_that_keeps_failing_acks_the_send_and_a_duplicate_is_delivery_unknown() {
    let store = Arc::new(FailingMark::new(u32::MAX, 0, 0));
    let settings = EmailSettings {
        claim_lease: Duration::from_secs(2),
        ..EmailSettings::default()
    };
    let s = setup_with(store, settings).await;
    let r = request("ada@example.com");
    // Sent once: the message is done, though its claim could not be marked.
    assert!(matches!(
        s.worker.handle(&r).await.unwrap(),
        Handled::Sent(_)
    ));
    // Never a blind takeover: once the claim's lease has passed, a duplicate gives up.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(e.label(), "delivery_unknown");
    assert_eq!(s.mailer.attempts(), 1, "sent once, never again");
    let _ = &s.bus;
}

#[tokio::test]
async fn a_send_cut_by_its_timeout_is_delivery_unknown_and_never_resent() {
    let s = setup().await;
    let r = request("ada@example.com");
    s.mailer.fail_next(
        "ada@example.com",
        [SendError::unknown("timeout", "no reply within 30s")],
    );
    let e = s.worker.handle(&r).await.unwrap_err();
    let h: HandlerError = e.into();
    assert_eq!(
        (h.kind(), h.label()),
        (FailureKind::Permanent, "delivery_unknown")
    );
    // The claim stays: a redelivery within its lease waits, never sends.
    let e = s.worker.handle(&r).await.unwrap_err();
    assert_eq!(e.label(), "send_in_progress");
    assert_eq!(s.mailer.attempts(), 1);
}

/// A mailer whose sends wait until released: the handler can be cancelled mid-send.
struct BlockingMailer {
    started: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait]
impl fleet_workers::email::Mailer for BlockingMailer {
    fn name(&self) -> &'static str {
        "memory"
    }
    async fn send(
        &self,
        _email: &fleet_workers::email::OutgoingEmail,
    ) -> Result<fleet_workers::email::Sent, SendError> {
        self.started.notify_one();
        self.release.notified().await;
        Ok(fleet_workers::email::Sent {
            provider_id: "blocked-1".into(),
        })
    }
}

/// The engine cancels a handler by dropping it (its lease lost, the drain's hard stop). A claimed
/// request's token wait, send, mark and publish run in a task of their own, so a handler dropped
/// before its send (waiting for a rate token) or during it does not cut them short: a redelivery
/// meanwhile waits, and once the send is done and marked it acks without sending again.
#[tokio::test]
async fn a_handler_dropped_before_or_during_its_send_lets_the_send_finish_and_be_marked_once() {
    let store: Arc<dyn IdempotencyStore> = Arc::new(MemoryIdempotencyStore::new());
    let bus = EmbeddedBus::new();
    bus.provision(&Topology::from_toml(TOPOLOGY).unwrap())
        .await
        .unwrap();
    let mailer = Arc::new(BlockingMailer {
        started: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let templates = Templates::from_files(
        "tests",
        [
            ("hello/subject.txt", "Hello {{ name }}"),
            ("hello/text.txt", "Hi {{ name }}"),
        ],
    );
    // One send per second with no token left: a handler waits for its token after claiming.
    let rate = Arc::new(SendRate::new(1.0, 1));
    rate.acquire().await;
    let worker = EmailWorker::new(
        Arc::new(templates),
        mailer.clone(),
        store.clone(),
        rate,
        BatchProducer::to_topic("events", bus.topic("events").await.unwrap()),
        PauseGate::new(),
        EmailSettings::default(),
    );
    let r = request("ada@example.com");
    // Dropped while waiting for its token (claimed, nothing sent yet): the send goes on in its
    // own task once the token comes, under the claim.
    let dropped = tokio::time::timeout(Duration::from_millis(300), worker.handle(&r)).await;
    assert!(dropped.is_err(), "still waiting for its token");
    mailer.started.notified().await;
    let probe = claim_of(&r, now_ms(), 1_000);
    assert!(
        matches!(
            store.claim(&probe).await.unwrap(),
            Claimed::InProgress { .. }
        ),
        "the claim is held while the send runs"
    );
    // A redelivery waits for the send in flight (its slot), then finds it sent and marked,
    // though the handler that claimed it is long gone.
    let redelivery = tokio::spawn({
        let (worker, r) = (worker.clone(), r.clone());
        async move { worker.handle(&r).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!redelivery.is_finished(), "the redelivery waits");
    mailer.release.notify_one();
    assert_eq!(
        redelivery.await.unwrap().unwrap(),
        Handled::AlreadySent("blocked-1".into())
    );

    // Dropped during the send (the task aborted under it).
    let during = request("bob@example.com");
    let handling = tokio::spawn({
        let worker = worker.clone();
        let during = during.clone();
        async move { worker.handle(&during).await }
    });
    mailer.started.notified().await;
    handling.abort();
    let _ = handling.await;
    let redelivery = tokio::spawn({
        let (worker, during) = (worker.clone(), during.clone());
        async move { worker.handle(&during).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!redelivery.is_finished(), "the redelivery waits");
    mailer.release.notify_one();
    assert_eq!(
        redelivery.await.unwrap().unwrap(),
        Handled::AlreadySent("blocked-1".into())
    );
}
