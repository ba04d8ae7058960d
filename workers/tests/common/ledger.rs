//! The ledger of a chaos run, from independent counts: what the test published (it is the
//! producer), the table's contents (orders, raw counter items), the SMTP server's received mail,
//! and the queues' contents (dead letters, and an audit queue subscribed to the events topic that
//! records every `email.requested` and `email.sent` the workers published). The workers' own
//! counters are never read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use fleet_bus::consumer::dead_letter::{DeadLetterReason, is_note};
use fleet_tests::smtp::AcceptedMail;
use fleet_workers::demo::{Confirmations, check};
use fleet_workers::orders::{DynamoOrderStore, OrderStore};
use fleet_workers::scenario::Scenario;

use super::fleet_run::Deployment;

/// What the processes went through, counted by the test that did it.
#[derive(Clone, Debug, Default)]
pub struct Disruptions {
    /// SIGKILLs sent.
    pub sigkills: usize,
    /// Processes that aborted at a failpoint, by failpoint.
    pub aborts: BTreeMap<String, usize>,
    /// SIGTERMs sent, each with how long the drain took (ms) and whether it drained in time
    /// with nothing abandoned.
    pub sigterms: Vec<(u128, bool)>,
    /// Fault phases by toxic (TCP proxy).
    pub toxics: BTreeMap<String, usize>,
    /// Calls answered with an injected AWS error, by operation.
    pub aws_errors: BTreeMap<String, u64>,
    /// SMTP connections dropped mid-DATA by the server.
    pub smtp_dropped_mid_data: usize,
    /// The email worker's sends in flight per process: how many claims one crash can leave.
    pub sends_in_flight: usize,
    /// When each kill (SIGKILL, or an abort as the test saw it) happened, in seconds since the
    /// epoch.
    pub kill_times: Vec<f64>,
    /// SIGTERM rolls while the faults were on (the others are the final rolls).
    pub sigterms_under_faults: usize,
}

impl Disruptions {
    /// Kills of any kind: SIGKILLs and failpoint aborts.
    pub fn kills(&self) -> usize {
        self.sigkills + self.aborts.values().sum::<usize>()
    }
}

/// The ledger.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// The seed.
    pub seed: u64,
    /// How to run it again.
    pub replay: String,
    /// Messages the test published: scenario events (copies included) and email requests.
    pub published: usize,
    /// Distinct scenario events.
    pub distinct_events: usize,
    /// Email requests the test published (with SMTP faults scripted by their addresses).
    pub direct_requests: usize,
    /// Order transitions applied, read from the table.
    pub transitions_applied: usize,
    /// Order transitions the model expects.
    pub transitions_expected: usize,
    /// Counter items' values summed (every counter's delta), read from the table.
    pub counter_total: i64,
    /// What the model expects of it.
    pub counter_total_expected: i64,
    /// Emails the SMTP server accepted (distinct requests).
    pub emails_sent: usize,
    /// Email requests (confirmations and direct requests) expected.
    pub emails_expected: usize,
    /// Copies suppressed, by where: published duplicates of scenario events, and email
    /// requests published more than once (by the audit queue).
    pub duplicates_suppressed: BTreeMap<&'static str, usize>,
    /// Dead letters by queue and reason.
    pub dead_lettered: BTreeMap<String, usize>,
    /// Requests dead-lettered `delivery_unknown` (distinct requests).
    pub delivery_unknown: usize,
    /// Of those, the ones the mail server had accepted (the process died after the send).
    pub delivery_unknown_sent: usize,
    /// Effects missing: in words.
    pub lost: Vec<String>,
    /// Effects done twice: in words.
    pub double_effects: Vec<String>,
    /// Anything else the model does not allow (a wrong status, a dead letter that must apply).
    pub wrong: Vec<String>,
    /// Processes that ended on their own (not at a failpoint), and drains that did not end in
    /// time: in words, with the process's last log lines.
    pub unexpected: Vec<String>,
    /// What the processes went through.
    pub disruptions: Disruptions,
}

/// What the orders worker dead-letters an impossible event as.
const REFUSALS: [&str; 6] = [
    "invalid_transition",
    "amount_mismatch",
    "currency_mismatch",
    "refund_exceeds_paid",
    "empty_refund",
    "already_placed",
];

/// The email worker's reason for a claim found left open (`EmailError::DeliveryUnknown`).
const CLAIM_LEFT_OPEN: &str = "and never confirmed; it is not resent";

/// The chaos run's claim lease (`CLAIM_LEASE` in `chaos.rs`).
const CLAIM_LEASE_SECONDS: f64 = 20.0;
/// How late the test may see an abort: its loop is blocked while a SIGTERM drains (up to 12 s),
/// with a margin.
const ABORT_SEEN_WITHIN_SECONDS: f64 = 15.0;

/// When a claim left open ran out, from the email worker's reason ("... claimed for sending until
/// epoch ms N and never confirmed ..."), in seconds since the epoch.
fn claim_end(message: &str) -> Option<f64> {
    let rest = message.split("until epoch ms ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(digits.parse::<f64>().ok()? / 1000.0)
}

/// The counter series of emails sent, by bucket size, and the part with the confirmation template.
const SENT: &str = "event#email.sent#";
const SENT_CONFIRMATION: &str = "event#email.sent#template=order_confirmation#";

/// The email.sent counters' totals per bucket size (`minute#`, `hour#`, `day#`) of one series.
fn sent_totals(counters: &HashMap<String, i64>, series: &str) -> BTreeMap<&'static str, i64> {
    ["minute#", "hour#", "day#"]
        .into_iter()
        .map(|bucket| {
            let prefix = format!("{series}{bucket}");
            let total = counters
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| v)
                .sum();
            (bucket, total)
        })
        .collect()
}

fn is_sent_series(key: &str) -> bool {
    key.starts_with(SENT)
}

/// A message's envelope id and type (the body is the envelope: raw delivery).
fn id_and_type(m: &fleet_bus::Message) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&m.body).ok()?;
    Some((
        v.get("id")?.as_str()?.to_owned(),
        v.get("type")?.as_str()?.to_owned(),
    ))
}

/// Builds the ledger: `scenario` is everything the producers published for the orders worker,
/// `direct` the ids of the email requests they published, `published` every message they sent.
pub async fn build(
    d: &Deployment,
    audit_queue: &str,
    scenario: &Scenario,
    direct: &BTreeSet<String>,
    published: usize,
    accepted: &[AcceptedMail],
    disruptions: Disruptions,
) -> Ledger {
    let mut ledger = Ledger {
        seed: scenario.seed,
        published,
        distinct_events: scenario.events.len(),
        direct_requests: direct.len(),
        transitions_expected: scenario.applied(),
        emails_expected: scenario.orders.len() + direct.len(),
        disruptions,
        ..Ledger::default()
    };

    // The orders, through the orders worker's own key.
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&d.sdk), d.table());
    let mut orders = Vec::new();
    for o in &scenario.orders {
        if let Some(loaded) = store.load(&o.order_id).await.unwrap() {
            ledger.transitions_applied += loaded.record.applied.len();
            orders.push(loaded);
        }
    }

    // The queues: dead letters, and what the workers published (the audit queue).
    let mut dead = BTreeMap::new();
    for q in [d.orders(), d.analytics(), d.email()] {
        let letters: Vec<_> = d
            .drain_queue(&format!("{q}-dlq"))
            .await
            .into_iter()
            .filter(|m| !is_note(m))
            .collect();
        for m in &letters {
            let kind = DeadLetterReason::from_message(m)
                .map_or_else(|| "no reason".to_owned(), |r| r.kind);
            let queue = q.strip_prefix(&format!("{}-", d.prefix)).unwrap_or(&q);
            *ledger
                .dead_lettered
                .entry(format!("{queue}: {kind}"))
                .or_default() += 1;
        }
        dead.insert(q, letters);
    }
    let audit = d.drain_queue(audit_queue).await;
    let mut requested: Vec<String> = Vec::new();
    let mut sent_published: BTreeSet<String> = BTreeSet::new();
    for (id, kind) in audit.iter().filter_map(id_and_type) {
        match kind.as_str() {
            "email.requested" => requested.push(id),
            "email.sent" => {
                // email.sent names its request in its cause: the id the worker derived from it;
                // it is counted by distinct email.sent ids (one per request).
                sent_published.insert(id);
            }
            _ => {}
        }
    }

    // The orders, the counters (less the email.sent series, checked below against the mail
    // server) and the orders' dead letters against the model; confirmations as requested.
    let mut counters = super::model::counters(d).await;
    let sent_all = sent_totals(&counters, SENT);
    let sent_confirmations = sent_totals(&counters, SENT_CONFIRMATION);
    counters.retain(|k, _| !is_sent_series(k));
    ledger.counter_total = counters.values().sum();
    ledger.counter_total_expected = scenario.expected_counters().values().sum();
    let confirmations: Vec<String> = requested
        .iter()
        .filter(|id| !direct.contains(*id))
        .cloned()
        .collect();
    let verdict = check(
        scenario,
        &orders,
        &counters,
        &dead[&d.orders()],
        &Confirmations::Published(confirmations.clone()),
    );
    ledger.lost.extend(verdict.lost);
    ledger.double_effects.extend(verdict.double_applied);
    ledger.wrong.extend(verdict.wrong);
    ledger.duplicates_suppressed.insert(
        "scenario event copies",
        scenario.publish.len() - scenario.events.len(),
    );
    let distinct_requests: BTreeSet<&String> = requested.iter().collect();
    ledger.duplicates_suppressed.insert(
        "email requests published twice",
        requested.len() - distinct_requests.len(),
    );

    // The orders' dead letters: each an impossible event (checked by the model above), dead-
    // lettered by the orders worker for what makes it impossible, not by running out of receives.
    let mut seen_refused: BTreeMap<String, usize> = BTreeMap::new();
    for m in &dead[&d.orders()] {
        let kind = DeadLetterReason::from_message(m).map(|r| r.kind);
        let id = id_and_type(m).map(|(id, _)| id).unwrap_or_default();
        if !kind.as_deref().is_some_and(|k| REFUSALS.contains(&k)) {
            ledger
                .wrong
                .push(format!("order event {id:?} dead-lettered as {kind:?}"));
        }
        *seen_refused.entry(id).or_default() += 1;
    }
    ledger.duplicates_suppressed.insert(
        "dead letters of one impossible event (a copy, or a crash before the delete)",
        seen_refused.values().map(|n| n - 1).sum(),
    );

    // Analytics dead letters: none may exist.
    for m in &dead[&d.analytics()] {
        ledger
            .wrong
            .push(format!("analytics dead letter: {}", m.body));
    }

    // Emails: each expected request accepted by the server exactly once, or dead-lettered
    // delivery_unknown (then accepted at most once); nothing else in the email DLQ.
    let mut unknown = BTreeSet::new();
    // When each one's claim ran out, as its dead letter says (seconds since the epoch).
    let mut claimed_until: BTreeMap<String, f64> = BTreeMap::new();
    for m in &dead[&d.email()] {
        let reason = DeadLetterReason::from_message(m);
        let id = id_and_type(m).map(|(id, _)| id).unwrap_or_default();
        match reason {
            // A claim left open by a process that died between claiming and marking.
            Some(r) if r.kind == "delivery_unknown" && r.message.contains(CLAIM_LEFT_OPEN) => {
                if id.is_empty() {
                    ledger
                        .wrong
                        .push(format!("an email dead letter without an id: {}", m.body));
                }
                if let Some(until) = claim_end(&r.message) {
                    claimed_until.insert(id.clone(), until);
                }
                unknown.insert(id);
            }
            // Any other delivery_unknown (a send that timed out after the DATA) or reason:
            // nothing in this run may cause one.
            other => ledger.wrong.push(format!(
                "email request {id:?} dead-lettered as {:?}",
                other.map(|r| (r.kind, r.message))
            )),
        }
    }
    ledger.delivery_unknown = unknown.len();
    let mut accepted_by_id: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for mail in accepted {
        let id = mail.event_id.clone().unwrap_or_default();
        accepted_by_id.entry(id).or_default().push(mail.at);
    }
    let confirmations: BTreeSet<String> = scenario
        .events
        .iter()
        .filter(|e| e.envelope.payload.event_type() == "order.placed")
        .map(|e| fleet_workers::orders::confirmation_id(&e.envelope.header.id))
        .collect();
    let expected_requests: BTreeSet<String> =
        confirmations.iter().chain(direct.iter()).cloned().collect();
    for id in &expected_requests {
        match accepted_by_id.get(id).map_or(0, Vec::len) {
            0 if unknown.contains(id) => {}
            0 => ledger.lost.push(format!("email {id} never sent")),
            1 => ledger.emails_sent += 1,
            n => {
                ledger.emails_sent += 1;
                ledger
                    .double_effects
                    .push(format!("email {id} sent {n} times"));
            }
        }
    }
    for id in accepted_by_id.keys() {
        if !expected_requests.contains(id) {
            ledger
                .wrong
                .push(format!("the server got an email nobody requested: {id:?}"));
        }
    }
    for id in unknown.iter().filter(|id| !expected_requests.contains(*id)) {
        ledger.wrong.push(format!(
            "delivery_unknown for a request nobody made: {id:?}"
        ));
    }

    // Each delivery_unknown needs a kill of its own while its claim was open: after the claim
    // (its lease before it ran out) and, when the server had the email, after the acceptance,
    // and before the lease ran out, plus the test's delay in seeing an abort. Matched greedily,
    // earliest deadline first, one kill per claim (one send in flight per process).
    let mut kills = ledger.disruptions.kill_times.clone();
    kills.sort_by(f64::total_cmp);
    let mut used = vec![false; kills.len()];
    let mut windows: Vec<(f64, f64, &String)> = Vec::new();
    for id in &unknown {
        let accepted_at = accepted_by_id.get(id).and_then(|at| at.first().copied());
        if accepted_at.is_some() {
            ledger.delivery_unknown_sent += 1;
        }
        let Some(until) = claimed_until.get(id).copied() else {
            ledger.wrong.push(format!(
                "delivery_unknown {id} does not say when its claim ran out"
            ));
            continue;
        };
        let claimed = until - CLAIM_LEASE_SECONDS;
        let from = accepted_at.map_or(claimed, |at| at.max(claimed)) - 1.0;
        windows.push((from, until + ABORT_SEEN_WITHIN_SECONDS, id));
    }
    windows.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (from, to, id) in windows {
        match (0..kills.len()).find(|k| !used[*k] && (from..=to).contains(&kills[*k])) {
            Some(k) => used[k] = true,
            None => ledger.wrong.push(format!(
                "delivery_unknown {id} with no kill of its own while its claim was open ({from:.1} to {to:.1})"
            )),
        }
    }

    // email.sent: one per request sent and marked, mapped back to its request. Every email.sent
    // names a request the server accepted; every request accepted and not left unknown has one.
    let by_sent_id: BTreeMap<String, &String> = expected_requests
        .iter()
        .map(|r| {
            (
                fleet_workers::orders::derived_id(r, fleet_workers::orders::EMAIL_SENT_SUFFIX),
                r,
            )
        })
        .collect();
    let mut marked: BTreeSet<&String> = BTreeSet::new();
    for sent_id in &sent_published {
        match by_sent_id.get(sent_id) {
            Some(request) => {
                marked.insert(request);
            }
            None => ledger
                .wrong
                .push(format!("email.sent {sent_id} answers no request")),
        }
    }
    for request in &marked {
        if !accepted_by_id.contains_key(*request) {
            ledger.wrong.push(format!(
                "email.sent for {request}, which the server never got"
            ));
        }
    }
    for request in accepted_by_id.keys() {
        if expected_requests.contains(request)
            && !unknown.contains(request)
            && !marked.contains(request)
        {
            ledger.lost.push(format!(
                "no email.sent for {request}, sent and not left unknown"
            ));
        }
    }
    // The counters count each email.sent once: all of them, and the confirmations apart.
    let want_sent = i64::try_from(marked.len()).unwrap_or(i64::MAX);
    for (bucket, got) in &sent_all {
        push_difference(
            &mut ledger,
            &format!("counters {SENT}{bucket}*"),
            *got,
            want_sent,
        );
    }
    let want_confirmations = i64::try_from(
        marked
            .iter()
            .filter(|r| confirmations.contains(**r))
            .count(),
    )
    .unwrap_or(i64::MAX);
    for (bucket, got) in &sent_confirmations {
        push_difference(
            &mut ledger,
            &format!("counters {SENT_CONFIRMATION}{bucket}*"),
            *got,
            want_confirmations,
        );
    }
    ledger
}

fn push_difference(ledger: &mut Ledger, what: &str, got: i64, want: i64) {
    match got.cmp(&want) {
        std::cmp::Ordering::Equal => {}
        std::cmp::Ordering::Less => ledger
            .lost
            .push(format!("{what}: {got} in all, expected {want}")),
        std::cmp::Ordering::Greater => ledger
            .double_effects
            .push(format!("{what}: {got} in all, expected {want}")),
    }
}

impl Ledger {
    /// The invariants that failed, in words (empty when all hold).
    pub fn broken(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.lost.is_empty() {
            out.push(format!("lost = {} (must be 0)", self.lost.len()));
        }
        if !self.double_effects.is_empty() {
            out.push(format!(
                "double effects = {} (must be 0)",
                self.double_effects.len()
            ));
        }
        if !self.wrong.is_empty() {
            out.push(format!(
                "{} outcomes the model does not allow (the DLQs must hold exactly the poison set)",
                self.wrong.len()
            ));
        }
        let bound = self.disruptions.kills() * self.disruptions.sends_in_flight;
        if self.delivery_unknown > bound {
            out.push(format!(
                "delivery_unknown = {} > {bound} (kills × sends in flight: a claim can only be left open by a crash)",
                self.delivery_unknown
            ));
        }
        for (i, (ms, drained)) in self.disruptions.sigterms.iter().enumerate() {
            if !drained {
                out.push(format!(
                    "SIGTERM {}: not drained in time after {ms} ms",
                    i + 1
                ));
            }
        }
        if !self.unexpected.is_empty() {
            out.push(format!(
                "{} processes ended on their own or did not drain (see below)",
                self.unexpected.len()
            ));
        }
        out
    }

    /// The ledger as Markdown (what the test prints and the long runs record in `docs/`).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let d = &self.disruptions;
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| seed | `FLEET_FAULT_SEED={}` |", self.seed);
        let _ = writeln!(
            s,
            "| published | {} messages: order events ({} distinct) and {} email requests |",
            self.published, self.distinct_events, self.direct_requests
        );
        let _ = writeln!(
            s,
            "| applied: order transitions | {} of {} |",
            self.transitions_applied, self.transitions_expected
        );
        let _ = writeln!(
            s,
            "| applied: counter deltas (sum, less email.sent) | {} of {} |",
            self.counter_total, self.counter_total_expected
        );
        let _ = writeln!(
            s,
            "| applied: emails sent (SMTP server) | {} of {} requests |",
            self.emails_sent, self.emails_expected
        );
        let dups: Vec<String> = self
            .duplicates_suppressed
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(s, "| duplicates suppressed | {} |", dups.join(", "));
        let dead: Vec<String> = self
            .dead_lettered
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect();
        let _ = writeln!(s, "| dead-lettered by reason | {} |", dead.join("; "));
        let _ = writeln!(s, "| lost | {} |", self.lost.len());
        let _ = writeln!(s, "| double effects | {} |", self.double_effects.len());
        let _ = writeln!(s, "| not allowed by the model | {} |", self.wrong.len());
        let _ = writeln!(
            s,
            "| delivery_unknown | {} ({} of them sent; each matched to a kill of its own while its claim was open; {} kills × {} send in flight) |",
            self.delivery_unknown,
            self.delivery_unknown_sent,
            d.kills(),
            d.sends_in_flight
        );
        let aborts: Vec<String> = d.aborts.iter().map(|(k, v)| format!("{k} × {v}")).collect();
        let _ = writeln!(
            s,
            "| kills | {} SIGKILL, {} failpoint aborts ({}) |",
            d.sigkills,
            d.aborts.values().sum::<usize>(),
            aborts.join(", ")
        );
        let longest = d.sigterms.iter().map(|(ms, _)| *ms).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "| SIGTERM rolls | {} ({} under faults; drained in time: {}; longest drain {} ms) |",
            d.sigterms.len(),
            d.sigterms_under_faults,
            d.sigterms.iter().filter(|(_, ok)| *ok).count(),
            longest
        );
        let toxics: Vec<String> = d.toxics.iter().map(|(k, v)| format!("{k} × {v}")).collect();
        let _ = writeln!(s, "| TCP fault phases | {} |", toxics.join(", "));
        let errors: Vec<String> = d
            .aws_errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "| AWS errors injected | {} |", errors.join(", "));
        let _ = writeln!(
            s,
            "| SMTP faults | {} connections dropped mid-DATA, 421 and 451 replies by address |",
            d.smtp_dropped_mid_data
        );
        for (title, list) in [
            ("lost", &self.lost),
            ("double effects", &self.double_effects),
            ("not allowed", &self.wrong),
            ("unexpected", &self.unexpected),
        ] {
            for line in list.iter().take(20) {
                let _ = writeln!(s, "\n- {title}: {line}");
            }
        }
        s
    }
}
