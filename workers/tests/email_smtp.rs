//! The SMTP mailer against a real SMTP server (aiosmtpd, `tests/smtp/server.py`): STARTTLS with
//! the server's self-signed certificate trusted through `ca_file`, AUTH with the password from a
//! secret source, and each failure class the server can script (421, 451, a dropped connection,
//! 550, a stall), a refused password, and settings that would send in the clear.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fleet_tests::smtp::SmtpServer;
use fleet_workers::email::privacy::has_full_address;
use fleet_workers::email::{
    Mailer, OutgoingEmail, SendErrorKind, SmtpError, SmtpMailer, SmtpSettings, SmtpTls,
};
use fleet_workers::secrets::{Secret, SecretError, SecretSource, StaticSecrets};

const USER: &str = "fleet";
const PASSWORD: &str = "correct horse battery";
const PARAMETER: &str = "/fleet/smtp/password";

/// A secret source that counts its reads (over [`StaticSecrets`], which a test can rotate).
#[derive(Debug, Default)]
struct CountingSecrets {
    inner: StaticSecrets,
    refreshes: AtomicUsize,
}

#[async_trait]
impl SecretSource for CountingSecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        self.inner.get(name).await
    }

    async fn refresh(&self, name: &str) -> Result<Secret, SecretError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.inner.refresh(name).await
    }
}

fn secrets(password: &str) -> Arc<CountingSecrets> {
    Arc::new(CountingSecrets {
        inner: StaticSecrets::new([(PARAMETER, password)]),
        refreshes: AtomicUsize::new(0),
    })
}

fn settings(server: &SmtpServer) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: Some(server.port),
        ca_file: Some(server.cert_pem.clone()),
        username: Some(USER.to_owned()),
        password_parameter: Some(PARAMETER.to_owned()),
        send_timeout: Duration::from_secs(5),
        ..SmtpSettings::default()
    }
}

async fn mailer(server: &SmtpServer) -> SmtpMailer {
    SmtpMailer::new(settings(server), secrets(PASSWORD))
        .await
        .unwrap()
}

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        from: "Fleet <orders@example.com>".to_owned(),
        to: to.to_owned(),
        reply_to: None,
        subject: "Your order is confirmed".to_owned(),
        text: "Thanks.".to_owned(),
        html: None,
        event_id: uuid::Uuid::new_v4().to_string(),
        template: Some("order_confirmation".to_owned()),
    }
}

#[tokio::test]
async fn a_send_arrives_once_with_its_event_id_and_the_queue_id_is_the_provider_id() {
    let server = SmtpServer::start(USER, PASSWORD);
    let mailer = mailer(&server).await;
    let e = email("alice@example.org");
    let sent = mailer.send(&e).await.unwrap();
    let accepted = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let got = &accepted[0];
    assert_eq!(got.event_id.as_deref(), Some(e.event_id.as_str()));
    assert_eq!(
        got.message_id.as_deref(),
        Some(format!("<{}@fleet>", e.event_id).as_str())
    );
    assert_eq!(got.to, ["alice@example.org"]);
    assert_eq!(got.from, "orders@example.com");
    assert_eq!(sent.provider_id, got.queue_id);
}

/// A fault that fails the first send to `to` transiently with `code`; the next send succeeds,
/// and the server records the email once.
async fn transient_then_delivered(to: &str, code: &str) {
    let server = SmtpServer::start(USER, PASSWORD);
    let mailer = mailer(&server).await;
    let e = email(to);
    let err = mailer.send(&e).await.expect_err("the first attempt fails");
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Transient, code),
        "{err}"
    );
    assert!(!has_full_address(&err.to_string()), "{err}");
    assert!(server.accepted().is_empty());
    mailer
        .send(&e)
        .await
        .expect("the second attempt is delivered");
    let accepted = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].event_id.as_deref(), Some(e.event_id.as_str()));
}

#[tokio::test]
async fn a_421_is_transient_and_a_later_send_succeeds() {
    transient_then_delivered("fault-421-1+a@example.org", "smtp_421").await;
}

#[tokio::test]
async fn a_451_is_transient_and_a_later_send_succeeds() {
    transient_then_delivered("fault-451-1+a@example.org", "smtp_451").await;
}

#[tokio::test]
async fn a_connection_dropped_at_rcpt_is_transient_and_a_later_send_succeeds() {
    transient_then_delivered("fault-drop-1+a@example.org", "smtp_network").await;
}

#[tokio::test]
async fn a_connection_dropped_mid_data_is_transient_and_a_later_send_succeeds() {
    // Closed after part of the body, before the final dot: the server took nothing.
    transient_then_delivered("fault-middata-1+a@example.org", "smtp_network").await;
}

#[tokio::test]
async fn a_550_is_rejected_with_the_address_masked() {
    let server = SmtpServer::start(USER, PASSWORD);
    let mailer = mailer(&server).await;
    let err = mailer
        .send(&email("fault-550+bob@example.org"))
        .await
        .expect_err("rejected");
    assert_eq!(err.kind, SendErrorKind::Rejected, "{err}");
    assert_eq!(err.code, "smtp_550");
    // The server echoed the full address; the error shows it masked.
    assert!(err.detail.contains("f***@example.org"), "{}", err.detail);
    assert!(
        err.detail.contains("Recipient address rejected"),
        "{}",
        err.detail
    );
    assert!(!has_full_address(&err.to_string()), "{err}");
    assert!(!has_full_address(&format!("{err:?}")), "{err:?}");
    // The connection was given up, not the mailer: the next send goes out.
    mailer.send(&email("carol@example.org")).await.unwrap();
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[tokio::test]
async fn a_stalled_server_is_cut_by_the_send_timeout_and_a_later_send_succeeds() {
    let server = SmtpServer::start(USER, PASSWORD);
    let mut s = settings(&server);
    s.send_timeout = Duration::from_secs(1);
    let mailer = SmtpMailer::new(s, secrets(PASSWORD)).await.unwrap();
    let started = Instant::now();
    let err = mailer
        .send(&email("fault-stall-1+a@example.org"))
        .await
        .expect_err("cut by the timeout");
    let took = started.elapsed();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Unknown, "timeout"),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "the timeout took {took:?}");
    // The abandoned connection, its reply still unread, is not reused (lettre's pool would take
    // it back once the abandoned send lets go of it: give it that moment): each later send gets
    // its own reply.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for to in ["dave@example.org", "erin@example.org"] {
        let next = email(to);
        let sent = mailer.send(&next).await.unwrap();
        let accepted = server.wait_for(1, Duration::from_secs(5));
        let mine = accepted
            .iter()
            .find(|m| m.event_id.as_deref() == Some(next.event_id.as_str()))
            .expect("the next email was accepted");
        assert_eq!(sent.provider_id, mine.queue_id);
    }
}

#[tokio::test]
async fn a_refused_password_is_read_again_once_and_the_send_goes_out() {
    let server = SmtpServer::start(USER, PASSWORD);
    let secrets = secrets("the old password");
    let mailer = SmtpMailer::new(settings(&server), secrets.clone())
        .await
        .unwrap();
    // Rotated in the store after the mailer cached the old one.
    secrets.inner.set(PARAMETER, PASSWORD);
    mailer.send(&email("alice@example.org")).await.unwrap();
    assert_eq!(secrets.refreshes.load(Ordering::SeqCst), 1);
    mailer.send(&email("bob@example.org")).await.unwrap();
    assert_eq!(
        secrets.refreshes.load(Ordering::SeqCst),
        1,
        "no refresh while it works"
    );
    assert_eq!(server.wait_for(2, Duration::from_secs(5)).len(), 2);
}

#[tokio::test]
async fn the_startup_and_pause_probe_reads_a_refused_password_again() {
    let server = SmtpServer::start(USER, PASSWORD);
    let secrets = secrets("wrong");
    let mailer = SmtpMailer::new(settings(&server), secrets.clone())
        .await
        .unwrap();
    let err = mailer.account().await.expect_err("refused");
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Paused, "smtp_auth"),
        "{err}"
    );
    // An operator fixes the parameter: the next probe reads it and answers.
    secrets.inner.set(PARAMETER, PASSWORD);
    mailer.account().await.unwrap();
    assert_eq!(secrets.refreshes.load(Ordering::SeqCst), 2);
    mailer.send(&email("alice@example.org")).await.unwrap();
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[tokio::test]
async fn a_password_that_stays_wrong_pauses() {
    let server = SmtpServer::start(USER, PASSWORD);
    let secrets = secrets("wrong");
    let mailer = SmtpMailer::new(settings(&server), secrets.clone())
        .await
        .unwrap();
    let err = mailer
        .send(&email("alice@example.org"))
        .await
        .expect_err("refused");
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Paused, "smtp_auth"),
        "{err}"
    );
    assert!(err.detail.contains("535"), "{}", err.detail);
    assert_eq!(secrets.refreshes.load(Ordering::SeqCst), 1);
    assert!(server.accepted().is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_transient_tls_error() {
    let server = SmtpServer::start(USER, PASSWORD);
    let mut s = settings(&server);
    s.ca_file = None;
    let mailer = SmtpMailer::new(s, secrets(PASSWORD)).await.unwrap();
    let err = mailer
        .send(&email("alice@example.org"))
        .await
        .expect_err("untrusted");
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Transient, "smtp_tls"),
        "{err}"
    );
    assert!(server.accepted().is_empty());
}

#[tokio::test]
async fn plaintext_to_another_host_is_refused_and_debug_hides_the_password() {
    let s = SmtpSettings {
        host: "smtp.example.com".to_owned(),
        tls: SmtpTls::None,
        ..SmtpSettings::default()
    };
    let err = SmtpMailer::new(s, secrets(PASSWORD))
        .await
        .expect_err("plaintext");
    assert!(
        matches!(err, SmtpError::Invalid { setting: "tls", .. }),
        "{err}"
    );

    let s = SmtpSettings {
        host: "smtp.example.com".to_owned(),
        username: Some("fleet@example.com".to_owned()),
        password_parameter: Some(PARAMETER.to_owned()),
        ..SmtpSettings::default()
    };
    let mailer = SmtpMailer::new(s, secrets(PASSWORD)).await.unwrap();
    let shown = format!("{mailer:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!has_full_address(&shown), "{shown}");
    assert!(shown.contains("smtp.example.com"), "{shown}");
}

#[tokio::test]
async fn a_send_its_caller_abandons_does_not_spoil_the_pool() {
    let server = SmtpServer::start(USER, PASSWORD);
    let mailer = mailer(&server).await;
    let stalled = email("fault-stall-1+a@example.org");
    let gave_up = tokio::time::timeout(Duration::from_millis(700), mailer.send(&stalled)).await;
    assert!(gave_up.is_err(), "the caller gave up first");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for to in ["frank@example.org", "grace@example.org"] {
        let next = email(to);
        let sent = mailer.send(&next).await.unwrap();
        let accepted = server.wait_for(1, Duration::from_secs(5));
        let mine = accepted
            .iter()
            .find(|m| m.event_id.as_deref() == Some(next.event_id.as_str()))
            .expect("the next email was accepted");
        assert_eq!(sent.provider_id, mine.queue_id);
    }
}
