//! The email worker (`fleet run --worker email` on moto, a real aiosmtpd server) at its crash
//! seam and under a connection dropped mid-DATA, counted at the SMTP server and in the queues:
//!
//! - `email::after_accept` (`fleet_bus::failpoint`): the process aborts after the server
//!   accepted, before the mark-as-sent; after the restart the request is never sent again and
//!   ends dead-lettered as `delivery_unknown` (README "Email", Outcomes);
//! - a connection dropped after part of the DATA body, before the final dot: nothing was taken,
//!   the send is a network error (`send_failed`, retried, the claim released) and the retry
//!   sends it once.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::fleet_run::{Deployment, Ended, smtp_email_section};
use fleet_bus::consumer::dead_letter::{DeadLetterReason, is_note};
use fleet_tests::smtp::SmtpServer;

const SMTP_USER: &str = "fleet";
const SMTP_PASSWORD: &str = "faults-Pa55word";
/// The email queue's visibility timeout here: how soon a crashed process's message comes back.
const VISIBILITY_SECONDS: u32 = 4;
const EXIT_LIMIT: Duration = Duration::from_secs(30);
const DRAIN_LIMIT: Duration = Duration::from_secs(45);

/// A deployment with the email worker on `server`, its queue's visibility timeout short.
async fn deployment(name: &str, server: &SmtpServer) -> Deployment {
    // A short claim, so a claim left by the crash is judged stale soon after the restart.
    let d = Deployment::write(name, 5, |p| smtp_email_section(p, server, SMTP_USER, "6s")).await;
    d.set_visibility_timeout(&d.email(), VISIBILITY_SECONDS);
    d.provision_topology().await;
    d.put_smtp_password(SMTP_PASSWORD).await;
    d
}

/// The email dead-letter queue's letters: request id and reason.
async fn dead_letters(d: &Deployment) -> Vec<(String, DeadLetterReason)> {
    d.drain_queue(&format!("{}-dlq", d.email()))
        .await
        .iter()
        .filter(|m| !is_note(m))
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            let reason = DeadLetterReason::from_message(m).unwrap();
            (v["id"].as_str().unwrap().to_owned(), reason)
        })
        .collect()
}

async fn wait_exit(process: common::fleet_run::Process) -> Ended {
    tokio::task::spawn_blocking(move || process.wait_exit(EXIT_LIMIT))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_server_accepted_is_never_resent_and_ends_delivery_unknown() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = deployment("fp-after-accept", &server).await;
    let crashing = d.start_with_env(
        &["email"],
        0,
        &[("FAILPOINTS", "email::after_accept=return")],
    );
    let id = d.publish_email_request("ada@example.com").await;
    let ended = wait_exit(crashing).await;
    assert_eq!(
        ended.code, None,
        "not killed by the abort: {}",
        ended.stderr
    );
    assert!(
        ended
            .stderr
            .contains("failpoint email::after_accept: aborting"),
        "{}",
        ended.stderr
    );
    // The seam: the server has it, nobody marked it sent.
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].event_id.as_deref(), Some(id.as_str()));

    d.run_until_drained(&["email"], 1, &[d.email()], DRAIN_LIMIT)
        .await;
    let accepted = server.accepted();
    assert_eq!(
        accepted.len(),
        1,
        "sent again after the crash: {accepted:?}"
    );
    let dead = dead_letters(&d).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, id);
    assert_eq!(dead[0].1.kind, "delivery_unknown", "{:?}", dead[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_data_is_retried_and_sent_once() {
    let server = SmtpServer::start(SMTP_USER, SMTP_PASSWORD);
    let d = deployment("smtp-mid-data", &server).await;
    let running = d.start(&["email"], 0);
    let id = d
        .publish_email_request("fault-middata-1+c@example.org")
        .await;
    d.wait_until_drained(&[d.email()], DRAIN_LIMIT).await;
    let ended = tokio::task::spawn_blocking(move || running.terminate(EXIT_LIMIT))
        .await
        .unwrap();
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert_eq!(server.dropped_mid_data(), 1, "the fault did not fire");
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].event_id.as_deref(), Some(id.as_str()));
    let dead = dead_letters(&d).await;
    assert!(dead.is_empty(), "{dead:?}");
}
