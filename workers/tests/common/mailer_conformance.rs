//! The conformance suite every mailer passes (memory, SMTP on aiosmtpd, SES v2 on moto): what a
//! send answers, and what the provider's own record of the delivered email shows. It asks only
//! what every provider can show: the event id, the subject, and (where the record says) whether
//! an HTML part came.

use std::future::Future;
use std::time::{Duration, Instant};

use fleet_workers::email::{Mailer, OutgoingEmail};

/// One email as the provider's record shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    /// The event id it carries (`X-Fleet-Event-Id`, an SES tag, the memory mailer's email).
    pub event_id: String,
    /// The subject, decoded.
    pub subject: String,
    /// Whether it has an HTML part, when the record says.
    pub has_html: Option<bool>,
}

/// The addresses the provider accepts.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// A sender the provider accepts (a verified identity on SES).
    pub from: String,
    /// A recipient it delivers to.
    pub to: String,
}

/// How long a delivered email may take to show in the provider's record.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// An email from the fixture with a fresh event id.
pub fn email(fixture: &Fixture, subject: &str, html: Option<&str>) -> OutgoingEmail {
    OutgoingEmail {
        from: fixture.from.clone(),
        to: fixture.to.clone(),
        reply_to: None,
        subject: subject.to_owned(),
        text: format!("{subject}\n\nThe text part."),
        html: html.map(str::to_owned),
        event_id: uuid::Uuid::new_v4().to_string(),
        template: Some("conformance".to_owned()),
    }
}

/// Runs every case against `mailer`; `delivered` reads the provider's record (all of it: the
/// suite picks its own emails by event id).
pub async fn conformance<F, Fut>(mailer: &dyn Mailer, fixture: &Fixture, delivered: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Delivered>>,
{
    let name = mailer.name();
    assert!(!name.is_empty(), "a mailer names itself");

    // A send answers a provider id, and the provider's record shows the email once, with its
    // event id and subject, and no HTML part.
    let plain = email(fixture, "Your order o-1 is confirmed", None);
    let first = mailer.send(&plain).await.expect("a plain send succeeds");
    assert!(
        !first.provider_id.trim().is_empty(),
        "{name}: an empty provider id"
    );
    let seen = wait_for(&delivered, &plain.event_id).await;
    assert_eq!(seen.len(), 1, "{name}: delivered once: {seen:?}");
    assert_eq!(seen[0].subject, plain.subject, "{name}: the subject");
    assert_ne!(
        seen[0].has_html,
        Some(true),
        "{name}: a text email has no HTML part"
    );

    // Two sends, two provider ids; a non-ASCII subject arrives as written.
    let second_email = email(fixture, "Ihre Bestellung ist bestätigt ✓", None);
    let second = mailer
        .send(&second_email)
        .await
        .expect("a second send succeeds");
    assert_ne!(
        first.provider_id, second.provider_id,
        "{name}: provider ids repeat"
    );
    let seen = wait_for(&delivered, &second_email.event_id).await;
    assert_eq!(seen.len(), 1, "{name}: delivered once: {seen:?}");
    assert_eq!(seen[0].subject, second_email.subject, "{name}: the subject");

    // An email with HTML arrives with it.
    let html = email(
        fixture,
        "Receipt",
        Some("<p>Thanks for your <b>order</b>.</p>"),
    );
    mailer.send(&html).await.expect("an HTML send succeeds");
    let seen = wait_for(&delivered, &html.event_id).await;
    assert_eq!(seen.len(), 1, "{name}: delivered once: {seen:?}");
    assert_ne!(
        seen[0].has_html,
        Some(false),
        "{name}: the HTML part is missing"
    );

    // Every provider answers about the account (the default when it says nothing).
    mailer.account().await.expect("account() answers");
}

/// The records of `event_id`, once there is one.
async fn wait_for<F, Fut>(delivered: &F, event_id: &str) -> Vec<Delivered>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Delivered>>,
{
    let started = Instant::now();
    loop {
        let found: Vec<Delivered> = delivered()
            .await
            .into_iter()
            .filter(|d| d.event_id == event_id)
            .collect();
        if !found.is_empty() {
            // A moment more, so a second copy would show too.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return delivered()
                .await
                .into_iter()
                .filter(|d| d.event_id == event_id)
                .collect();
        }
        assert!(
            started.elapsed() < VISIBLE_WITHIN,
            "event {event_id} not in the provider's record within {VISIBLE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
