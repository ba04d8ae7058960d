//! The email worker's handler: compose, claim, then (in a task of its own) wait for a send
//! token, send, mark sent and publish `email.sent`. Errors become outcomes in one place
//! (`From<EmailError> for HandlerError`, in `outcome.rs`).
//!
//! **Never twice.** SES's `SendEmail` and SMTP have no idempotency token, so the request's id is
//! claimed in the idempotency store right before the send, *without takeover*: a claim left by a
//! process that died between claiming and marking (the provider may have accepted the email) is
//! never resent but dead-lettered as `delivery_unknown`. A send that failed with nothing sent
//! releases its claim, so the retry claims again. At most `sends_in_flight` claims are open at
//! once per process, which bounds the `delivery_unknown`s one crash can leave.

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::consumer::{Delivery, HandlerError, MessageHandler, PauseGate};
use fleet_bus::failpoint;
use fleet_bus::idempotency::counters as idempotency_counters;
use fleet_bus::idempotency::{
    Claim, Claimed, Clock, Held, HolderToken, IdempotencyError, IdempotencyStore, payload_hash,
};
use fleet_bus::producer::BatchProducer;
use fleet_schemas::{EmailRequested, EmailSent, Envelope, MailerKind, Producer, Router};
use metrics::{counter, gauge};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::compose::compose;
use super::mailer::{Mailer, OutgoingEmail, SendErrorKind, Sent};
use super::outcome::EmailError;
use super::privacy::mask_address;
use super::rate::SendRate;
use super::render::Templates;
use crate::observe::metrics as m;
use crate::orders::{EMAIL_SENT_SUFFIX, derived_envelope};

/// The producer name of the events the email worker publishes.
pub const PRODUCER: &str = "email";
/// The idempotency key prefix of email requests.
pub const KEY_PREFIX: &str = "email#";
/// The `worker` label of the email worker's idempotency counters: its consumer's handler name.
const WORKER: &str = "email";

/// How the worker sends.
#[derive(Clone, Debug)]
pub struct EmailSettings {
    /// The sender (`Fleet <orders@example.com>`).
    pub from: String,
    /// How long a claim holds a request while it is sent and marked: longer than a send may
    /// take (the mailer's own timeout) plus the time to mark it.
    pub claim_lease: Duration,
    /// How long a sent request's record is kept (longer than the queue's retention, so any
    /// redelivery finds it).
    pub keep_sent_for: Duration,
    /// Sends (claim → send → mark) in flight at once in this process.
    pub sends_in_flight: usize,
    /// After the provider says the account cannot send, polling pauses this long before the
    /// next try.
    pub pause_probe: Duration,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            from: "Fleet <no-reply@example.com>".to_owned(),
            claim_lease: Duration::from_secs(45),
            keep_sent_for: Duration::from_secs(15 * 24 * 3600),
            sends_in_flight: 1,
            pause_probe: Duration::from_secs(60),
        }
    }
}

/// What one delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Sent now, with the provider's id.
    Sent(String),
    /// Sent before (a redelivery or a duplicate request): not sent again.
    AlreadySent(String),
}

/// The email worker.
#[derive(Clone)]
pub struct EmailWorker {
    inner: Arc<Inner>,
}

struct Inner {
    templates: Arc<Templates>,
    mailer: Arc<dyn Mailer>,
    store: Arc<dyn IdempotencyStore>,
    rate: Arc<SendRate>,
    sends: Arc<Semaphore>,
    events: Producer,
    gate: PauseGate,
    settings: EmailSettings,
    clock: Clock,
}

/// What the worker stores in a sent request's record (`data`).
#[derive(serde::Serialize, serde::Deserialize)]
struct SentRecord {
    provider_id: String,
    mailer: String,
    /// When the provider accepted it: `email.sent`'s time, the same on every publish (absent
    /// from a record another writer made: then the request's time).
    #[serde(default)]
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl EmailWorker {
    /// A worker rendering with `templates`, sending through `mailer` at `rate`, claiming in
    /// `store`, publishing `email.sent` through `events`, and closing `gate` while the provider
    /// says the account cannot send.
    pub fn new(
        templates: Arc<Templates>,
        mailer: Arc<dyn Mailer>,
        store: Arc<dyn IdempotencyStore>,
        rate: Arc<SendRate>,
        events: BatchProducer,
        gate: PauseGate,
        settings: EmailSettings,
    ) -> Self {
        gauge!(m::EMAIL_SEND_RATE).set(rate.per_second());
        gauge!(m::EMAIL_PAUSED).set(0.0);
        // Registered at zero, so a rate over them reads 0 rather than nothing before the first.
        for outcome in ["sent", "rejected", "throttled", "failed"] {
            counter!(m::EMAIL_SENDS, "outcome" => outcome).increment(0);
        }
        counter!(m::EMAIL_THROTTLES).increment(0);
        idempotency_counters::register(WORKER);
        Self {
            inner: Arc::new(Inner {
                templates,
                mailer,
                store,
                rate,
                sends: Arc::new(Semaphore::new(settings.sends_in_flight.max(1))),
                events: Producer::new(events, PRODUCER),
                gate,
                settings,
                clock: Clock::system(),
            }),
        }
    }

    /// The gate this worker closes while the account cannot send.
    pub fn gate(&self) -> &PauseGate {
        &self.inner.gate
    }

    /// The consumer handler: `email.requested` only; anything else and anything that does not
    /// decode is dead-lettered with the schema error's label.
    pub fn handler(&self) -> MessageHandler {
        let worker = self.clone();
        Router::new("email")
            .on::<EmailRequested, _, _>(move |envelope: Envelope<EmailRequested>, _d: Delivery| {
                let worker = worker.clone();
                async move {
                    let handled = worker.handle(&envelope).await;
                    worker.log(&envelope, &handled);
                    handled.map(|_| ()).map_err(HandlerError::from)
                }
            })
            .into_handler()
    }

    /// Handles one request: sends it once, or says why not.
    ///
    /// # Errors
    /// Why it was not sent; see [`EmailError`] for which are retried.
    pub async fn handle(&self, request: &Envelope<EmailRequested>) -> Result<Handled, EmailError> {
        let me = &*self.inner;
        let email = compose(&me.templates, &me.settings.from, request)?;
        // Received before the account was paused: wait for the probe rather than ask the
        // provider again; still paused, it is retried later (never dead-lettered for it).
        if me.gate.paused().is_some()
            && tokio::time::timeout(me.settings.pause_probe, me.gate.opened())
                .await
                .is_err()
        {
            return Err(EmailError::Send {
                mailer: me.mailer.name(),
                error: super::mailer::SendError::paused(
                    "paused",
                    me.gate.paused().unwrap_or_default(),
                ),
            });
        }
        // Held by the claim's guard, then by the send's own task, so a handler dropped while it
        // claims or sends never lets another claim open beside it (never closed).
        let slot = me.sends.clone().acquire_owned().await.ok();
        let claim = self.claim_for(request);
        let request_id = request.header.id.clone();
        // A release tries again until the claim's lease, less a margin, as the mark does.
        let release_until_ms = claim
            .in_progress_until_ms
            .saturating_sub(millis(me.settings.claim_lease) / 10);
        let held = claim.held();
        // Armed before the claim goes out: a handler dropped (its lease lost, the drain's hard
        // stop) while the claim is on the wire releases what this holder may hold.
        let mut unsent = ReleaseUnlessSent {
            store: me.store.clone(),
            held: Some(held.clone()),
            sending: false,
            clock: me.clock,
            until_ms: release_until_ms,
            slot,
        };
        let claimed = match me.store.claim(&claim).await {
            Ok(claimed) => claimed,
            Err(e) => {
                // The write may have landed with its answer lost (a connection reset after the
                // request went out, an attempt timeout): this holder may hold a claim it does
                // not know of. Released, so the retry claims afresh; kept, the retry (a new
                // holder) would find it in progress and, past its lease, dead-letter a request
                // never sent as delivery_unknown. Releasing what was never written changes
                // nothing; a refused claim wrote nothing.
                if e.is_retryable() {
                    release(&*me.store, &held, &me.clock, release_until_ms).await;
                }
                unsent.disarm();
                return Err(EmailError::Claim(e));
            }
        };
        if !matches!(claimed, Claimed::Acquired) {
            unsent.disarm();
        }
        match claimed {
            Claimed::Acquired => {}
            Claimed::Completed { data } => {
                counter!(m::EMAIL_DUPLICATES).increment(1);
                idempotency_counters::hit(WORKER);
                let record = data
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<SentRecord>(d).ok());
                let provider_id = record
                    .as_ref()
                    .map_or_else(String::new, |r| r.provider_id.clone());
                if let Some(r) = &record {
                    self.publish_sent(request, r).await?;
                }
                return Ok(Handled::AlreadySent(provider_id));
            }
            Claimed::InProgress { until_ms } => {
                idempotency_counters::conflict(WORKER, "in_progress");
                let now = me.clock.now_ms();
                if until_ms >= now {
                    return Err(EmailError::InProgressElsewhere {
                        request_id,
                        wait: Duration::from_millis(until_ms - now),
                    });
                }
                counter!(m::EMAIL_DELIVERY_UNKNOWN).increment(1);
                return Err(EmailError::DeliveryUnknown {
                    request_id,
                    claimed_until_ms: until_ms,
                });
            }
            Claimed::KeyReused => {
                idempotency_counters::conflict(WORKER, "key_reused");
                return Err(EmailError::KeyReused { request_id });
            }
        }
        // The send, the mark and the publish run in a task of their own, which the handler
        // awaits: a handler dropped meanwhile (its lease lost, the drain's hard stop) no longer
        // cuts a send or a mark short, so a sent email is still marked, and a redelivery (which
        // finds the claim in progress and waits) acks it instead of dead-lettering it as
        // delivery_unknown.
        let worker = self.clone();
        let request = request.clone();
        // In the handler's span and trace context (a task-local a spawned task does not
        // inherit), so the send's logs and the `email.sent` it publishes stay in the request's
        // trace.
        let context = fleet_bus::trace::current();
        let send = async move {
            worker
                .send_claimed(&request, &email, &claim, unsent, release_until_ms)
                .await
        };
        let task = match context {
            Some(context) => tokio::spawn(
                fleet_bus::trace::scope(context, send).instrument(tracing::Span::current()),
            ),
            None => tokio::spawn(send.instrument(tracing::Span::current())),
        };
        match task.await {
            Ok(handled) => handled,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down under it: whether it was sent is unknown.
            Err(e) => Err(EmailError::Send {
                mailer: me.mailer.name(),
                error: super::mailer::SendError::unknown("cancelled", e.to_string()),
            }),
        }
    }

    /// Sends a claimed request and marks it sent, or releases its claim when nothing was sent.
    async fn send_claimed(
        &self,
        request: &Envelope<EmailRequested>,
        email: &OutgoingEmail,
        claim: &Claim,
        mut unsent: ReleaseUnlessSent,
        release_until_ms: u64,
    ) -> Result<Handled, EmailError> {
        let me = &*self.inner;
        let held = claim.held();
        // The token right before the send, so the provider sees the rate (a claim's latency
        // does not bunch sends; taken before the claim, it let 12 sends into one second at a
        // rate of 10 and a burst of 1); a duplicate found by its claim spends none.
        me.rate.acquire().await;
        unsent.sending();
        let sent = me.mailer.send(email).await;
        match sent {
            Ok(sent) => {
                unsent.disarm();
                // Accepted, not yet marked: the claim left in progress stops any resend.
                failpoint::hit(failpoint::EMAIL_AFTER_ACCEPT).await;
                self.sent(request, email, claim, &sent).await
            }
            Err(error) if error.kind == SendErrorKind::Unknown => {
                // The provider may have it: the claim stays, and the request is never resent.
                unsent.disarm();
                counter!(m::EMAIL_DELIVERY_UNKNOWN).increment(1);
                self.send_failed(&error);
                Err(EmailError::Send {
                    mailer: me.mailer.name(),
                    error,
                })
            }
            Err(error) => {
                // Nothing was sent: the claim goes, so a retry claims again.
                unsent.disarm();
                release(&*me.store, &held, &me.clock, release_until_ms).await;
                self.send_failed(&error);
                Err(EmailError::Send {
                    mailer: me.mailer.name(),
                    error,
                })
            }
        }
    }

    fn claim_for(&self, request: &Envelope<EmailRequested>) -> Claim {
        let me = &*self.inner;
        let now_ms = me.clock.now_ms();
        let until = now_ms.saturating_add(millis(me.settings.claim_lease));
        let validation = payload_hash(
            &serde_json::to_value(&request.payload).unwrap_or(serde_json::Value::Null),
        );
        Claim {
            key: format!("{KEY_PREFIX}{}", request.header.id),
            validation,
            holder: HolderToken::new(),
            now_ms,
            in_progress_until_ms: until,
            expiration: (now_ms / 1000).saturating_add(me.settings.keep_sent_for.as_secs()),
            takeover: false,
        }
    }

    /// The provider accepted: mark the claim sent (retried until the claim's lease nears its
    /// end), then publish `email.sent`.
    async fn sent(
        &self,
        request: &Envelope<EmailRequested>,
        email: &OutgoingEmail,
        claim: &Claim,
        sent: &Sent,
    ) -> Result<Handled, EmailError> {
        let held = &claim.held();
        let me = &*self.inner;
        let mailer = me.mailer.name();
        counter!(m::EMAIL_SENDS, "outcome" => "sent").increment(1);
        let record = SentRecord {
            provider_id: sent.provider_id.clone(),
            mailer: mailer.to_owned(),
            sent_at: Some(chrono::Utc::now()),
        };
        let data = serde_json::to_string(&record).unwrap_or_default();
        let expiration =
            (me.clock.now_ms() / 1000).saturating_add(me.settings.keep_sent_for.as_secs());
        // Within the claim's lease, less a margin: past it, a duplicate may judge it stale.
        let left_ms = claim
            .in_progress_until_ms
            .saturating_sub(me.clock.now_ms())
            .saturating_sub(millis(me.settings.claim_lease) / 10);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left_ms);
        let mut pause = Duration::from_millis(100);
        loop {
            match me.store.complete(held, Some(&data), expiration).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(request_id = %request.header.id, provider_id = %sent.provider_id, error = %e, "marking a sent email failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(source) => {
                    // It was sent, once: the message is done. Its claim stays in progress, so a
                    // duplicate of the request is dead-lettered as delivery_unknown, never sent.
                    counter!(m::EMAIL_UNMARKED).increment(1);
                    tracing::error!(request_id = %request.header.id, provider_id = %sent.provider_id, to = %mask_address(&email.to), error = %source,
                        "an email was sent but could not be marked sent within its claim's lease; a duplicate of this request will be dead-lettered as delivery_unknown, never sent again");
                    break;
                }
            }
        }
        self.publish_sent(request, &record).await?;
        Ok(Handled::Sent(sent.provider_id.clone()))
    }

    fn send_failed(&self, error: &super::mailer::SendError) {
        let outcome = match error.kind {
            SendErrorKind::Transient if super::ses::is_throttling(&error.code) => "throttled",
            SendErrorKind::Transient => "failed",
            SendErrorKind::Rejected => "rejected",
            SendErrorKind::Paused => "paused",
            SendErrorKind::Unknown => "unknown",
        };
        counter!(m::EMAIL_SENDS, "outcome" => outcome).increment(1);
        if outcome == "throttled" {
            counter!(m::EMAIL_THROTTLES).increment(1);
        }
        if error.kind == SendErrorKind::Paused {
            self.pause(&format!("{}: {}", error.code, error.detail));
        }
    }

    /// Closes the gate (polling stops, readiness reports why) and opens it again after
    /// `pause_probe`, when the next message tries the provider again.
    pub fn pause(&self, reason: &str) {
        let me = &*self.inner;
        if me.gate.pause(reason) {
            gauge!(m::EMAIL_PAUSED).set(1.0);
            tracing::error!(
                mailer = me.mailer.name(),
                reason,
                probe_after_s = me.settings.pause_probe.as_secs(),
                "the mail provider says the account cannot send: polling pauses (messages are retried, not dead-lettered)"
            );
            let gate = me.gate.clone();
            let probe = me.settings.pause_probe;
            let mailer = me.mailer.clone();
            tokio::spawn(async move {
                // Reopen only once the provider no longer says the account cannot send; a
                // provider that cannot be asked (moto has no GetAccount) lets one try through.
                loop {
                    tokio::time::sleep(probe).await;
                    match mailer.account().await {
                        Ok(a) if a.sending_enabled == Some(false) => {
                            tracing::warn!(
                                mailer = mailer.name(),
                                "the account still cannot send: polling stays paused"
                            );
                        }
                        Err(e) if e.kind == SendErrorKind::Paused => {
                            tracing::warn!(mailer = mailer.name(), code = %e.code, "the account still cannot send: polling stays paused");
                        }
                        _ => break,
                    }
                }
                if gate.resume() {
                    gauge!(m::EMAIL_PAUSED).set(0.0);
                    tracing::info!("polling resumes: the next email tries the provider again");
                }
            });
        }
    }

    /// Publishes `email.sent`, its id derived from the request's (`<request id>:sent`) and its
    /// time the send's, so a publish repeated after a crash is the same event.
    async fn publish_sent(
        &self,
        request: &Envelope<EmailRequested>,
        record: &SentRecord,
    ) -> Result<(), EmailError> {
        let mailer = match record.mailer.as_str() {
            "ses" => MailerKind::Ses,
            "smtp" => MailerKind::Smtp,
            _ => MailerKind::Memory,
        };
        let event = EmailSent::fulfilling(request, mailer, record.provider_id.as_str())
            .map_err(|e| EmailError::Publish(e.to_string()))?;
        let mut envelope = derived_envelope(request, PRODUCER, EMAIL_SENT_SUFFIX, event);
        envelope.header.occurred_at = record.sent_at.unwrap_or(request.header.occurred_at);
        self.inner
            .events
            .send_envelope(&envelope)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Publish(e.to_string()))
    }

    fn log(&self, request: &Envelope<EmailRequested>, handled: &Result<Handled, EmailError>) {
        let template = match &request.payload.content {
            fleet_schemas::EmailContent::Template { template, .. } => template.as_str(),
            fleet_schemas::EmailContent::Direct { .. } => "-",
        };
        let to = mask_address(request.payload.to.as_str());
        match handled {
            Ok(Handled::Sent(id)) => {
                tracing::debug!(request_id = %request.header.id, template, %to, provider_id = %id, "email sent");
            }
            Ok(Handled::AlreadySent(id)) => {
                tracing::info!(request_id = %request.header.id, template, %to, provider_id = %id, "email sent before: not sent again");
            }
            Err(e @ EmailError::DeliveryUnknown { .. }) => {
                tracing::warn!(request_id = %request.header.id, template, %to, reason = e.label(), error = %e, "email delivery unknown: dead-lettered for an operator");
            }
            Err(_) => {}
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Releases a claim nothing was sent under, trying again (as the mark does) until `until_ms`,
/// the claim's lease less a margin: a claim left in progress makes the retry of a request that was
/// never sent a `delivery_unknown`.
async fn release(store: &dyn IdempotencyStore, held: &Held, clock: &Clock, until_ms: u64) {
    let mut pause = Duration::from_millis(100);
    loop {
        match store.release(held).await {
            Ok(()) => return,
            // Nothing held by this holder: a claim whose write never landed, or a release that
            // landed on an earlier try whose answer was lost.
            Err(IdempotencyError::NotHeld { .. }) => return,
            Err(e) if e.is_retryable() && clock.now_ms() + millis(pause) < until_ms => {
                tracing::warn!(key = %held.key, error = %e, "releasing a claim after a failed send failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                // The claim stays until its lease ends; a retry then dead-letters as
                // delivery_unknown, which is wrong but safe (nothing was sent). Logged so an
                // operator can tell.
                tracing::warn!(key = %held.key, error = %e, "releasing a claim after a failed send failed");
                return;
            }
        }
    }
}

/// Releases the claim if the handler is dropped (cancelled by the engine) before the send
/// began; once the send began, a drop keeps it, since the provider may have the email.
struct ReleaseUnlessSent {
    store: Arc<dyn IdempotencyStore>,
    held: Option<Held>,
    sending: bool,
    clock: Clock,
    until_ms: u64,
    /// The send slot (`sends_in_flight`): held until the claim is settled, by a release if it
    /// comes to that, so no more claims are open at once than the setting allows.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl ReleaseUnlessSent {
    fn sending(&mut self) {
        self.sending = true;
    }

    fn disarm(&mut self) {
        self.held = None;
    }
}

impl Drop for ReleaseUnlessSent {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            if self.sending {
                tracing::warn!(key = %held.key, "a send was cancelled after it began: its claim stays, and a redelivery is dead-lettered as delivery_unknown");
                return;
            }
            let (store, clock, until_ms) = (self.store.clone(), self.clock, self.until_ms);
            let slot = self.slot.take();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    release(&*store, &held, &clock, until_ms).await;
                    drop(slot);
                });
            }
        }
    }
}

impl std::fmt::Debug for EmailWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailWorker")
            .field("mailer", &self.inner.mailer.name())
            .field("rate", &self.inner.rate)
            .finish_non_exhaustive()
    }
}
