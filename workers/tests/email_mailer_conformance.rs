//! The mailer conformance suite (`common/mailer_conformance.rs`), run for every mailer: the
//! memory mailer (its own record) and the SMTP mailer against a real aiosmtpd server (the
//! server's record of accepted messages).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::mailer_conformance::{Delivered, Fixture, conformance};
use fleet_tests::smtp::SmtpServer;
use fleet_workers::email::{MemoryMailer, SmtpMailer, SmtpSettings};
use fleet_workers::secrets::StaticSecrets;

fn fixture() -> Fixture {
    Fixture {
        from: "Fleet <orders@example.com>".to_owned(),
        to: "alice@example.org".to_owned(),
    }
}

#[tokio::test]
async fn memory() {
    let mailer = MemoryMailer::new();
    conformance(&mailer, &fixture(), || async {
        mailer
            .accepted()
            .into_iter()
            .map(|a| Delivered {
                event_id: a.email.event_id,
                subject: a.email.subject,
                has_html: Some(a.email.html.is_some()),
            })
            .collect()
    })
    .await;
}

#[tokio::test]
async fn smtp() {
    let server = SmtpServer::start("fleet", "s3cret-pw");
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: Some(server.port),
        ca_file: Some(server.cert_pem.clone()),
        username: Some("fleet".to_owned()),
        password_parameter: Some("/fleet/smtp/password".to_owned()),
        ..SmtpSettings::default()
    };
    let secrets = Arc::new(StaticSecrets::new([("/fleet/smtp/password", "s3cret-pw")]));
    let mailer = SmtpMailer::new(settings, secrets).await.unwrap();
    conformance(&mailer, &fixture(), || async {
        server
            .accepted()
            .into_iter()
            .map(|m| Delivered {
                event_id: m.event_id.unwrap_or_default(),
                subject: m.subject,
                has_html: Some(m.has_html),
            })
            .collect()
    })
    .await;
}
