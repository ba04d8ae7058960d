//! The SES v2 mailer and the SSM secret source, against moto_server; the mailer's "no SDK
//! retries" against a local HTTP server that fails every request.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sesv2::config::Credentials;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_ssm::types::ParameterType;
use fleet_bus::scenarios::unique_name;
use fleet_tests::{moto, ses};
use fleet_workers::aws_calls::{AwsCalls, CallCount};
use fleet_workers::email::privacy::has_full_address;
use fleet_workers::email::{Mailer, OutgoingEmail, SendErrorKind, SesMailer, SesSettings};
use fleet_workers::secrets::{SecretError, SecretSource, SsmSecrets};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn email(from: &str, html: Option<&str>) -> OutgoingEmail {
    OutgoingEmail {
        from: from.to_owned(),
        to: "bob.jones@example.org".to_owned(),
        reply_to: Some("help@example.com".to_owned()),
        subject: "Votre commande n° 42 ✓".to_owned(),
        text: "Merci, Bob — 12,50 €".to_owned(),
        html: html.map(str::to_owned),
        event_id: uuid::Uuid::new_v4().to_string(),
        template: Some("order confirmation/v2".to_owned()),
    }
}

fn mailer(calls: &AwsCalls, config: &SdkConfig) -> SesMailer {
    SesMailer::new(calls.sesv2_client(config), SesSettings::default())
}

const ONE_CALL: CallCount = CallCount {
    calls: 1,
    requests: 1,
    errors: 0,
};

#[tokio::test]
async fn a_send_from_a_verified_sender_is_recorded_once_by_moto() {
    let config = moto::sdk_config().await;
    let sender = format!("{}@example.com", unique_name("orders"));
    ses::verify_sender(&config, &sender).await;
    let calls = AwsCalls::new();
    let mailer = mailer(&calls, &config);

    let with_html = email(&format!("Fleet Café <{sender}>"), Some("<p>Merci, Bob</p>"));
    let sent = mailer.send(&with_html).await.unwrap();
    assert!(!sent.provider_id.is_empty());
    assert_eq!(
        calls.get("SESv2", "SendEmail"),
        ONE_CALL,
        "no retry, no error"
    );
    let recorded = ses::sent_with_id(&sent.provider_id);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let recorded = &recorded[0];
    assert_eq!(recorded.subject, with_html.subject, "UTF-8 subject");
    assert_eq!(recorded.destinations, vec![with_html.to.clone()]);
    // The non-ASCII display name went out MIME-encoded (RFC 2047), as SES requires.
    assert_eq!(
        recorded.source,
        format!("=?UTF-8?B?RmxlZXQgQ2Fmw6k=?= <{sender}>")
    );
    // moto keeps one body: the HTML when there is one. It keeps no message tags.
    assert_eq!(recorded.body, "<p>Merci, Bob</p>");

    let text_only = email(&sender, None);
    let sent = mailer.send(&text_only).await.unwrap();
    let recorded = ses::sent_with_id(&sent.provider_id);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].body, text_only.text);
    assert_eq!(recorded[0].source, sender);
}

#[tokio::test]
async fn an_unverified_sender_is_rejected_with_a_masked_detail() {
    let config = moto::sdk_config().await;
    let sender = format!("{}@example.net", unique_name("nobody"));
    let calls = AwsCalls::new();
    let err = mailer(&calls, &config)
        .send(&email(&sender, None))
        .await
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Rejected, "{err}");
    assert_eq!(err.code, "MessageRejected");
    // moto's text is "Email address not verified <sender>": the address is masked.
    assert!(err.detail.contains("n***@example.net"), "{err}");
    assert!(!has_full_address(&err.to_string()), "{err}");
    assert_eq!(calls.get("SESv2", "SendEmail").requests, 1);
}

#[tokio::test]
async fn account_errs_on_moto_which_answers_get_account_with_404() {
    let config = moto::sdk_config().await;
    let err = mailer(&AwsCalls::new(), &config)
        .account()
        .await
        .unwrap_err();
    // The caller falls back to the configured send rate.
    assert_eq!(err.kind, SendErrorKind::Rejected, "{err:?}");
    assert_eq!(err.code, "http_404", "{err:?}");
    // moto's HTML page is not JSON; the detail says so without dumping the raw response.
    assert!(err.detail.starts_with("HTTP 404: "), "{err:?}");
    assert!(!err.detail.contains("doctype"), "{err:?}");
}

/// A local HTTP server answering every request with `status`, `headers` and `body`; keeps the
/// request bodies it saw.
async fn failing_server(
    status: &'static str,
    headers: &'static str,
    body: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let request = read_request(&mut socket).await;
                counter.lock().unwrap().push(request);
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                socket.shutdown().await.ok();
            });
        }
    });
    (endpoint, seen)
}

/// Reads one request: its head, then `Content-Length` bytes of body, which it returns.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before a whole request head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before the whole body");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf[head_end..].to_vec()).unwrap()
}

/// SDK configuration for a local endpoint, with the SDK's standard retries (3 attempts, short
/// backoff): what the mailer must switch off for `SendEmail`.
async fn local_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("t", "t", None, None, "test"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .load()
        .await
}

#[tokio::test]
async fn sdk_retries_are_off_for_send_email() {
    let cases = [
        (
            "500 Internal Server Error",
            "",
            r#"{"__type":"InternalFailure","message":"boom for bob.jones@example.org"}"#,
            "InternalFailure",
            None,
        ),
        (
            "429 Too Many Requests",
            "x-amzn-ErrorType: TooManyRequestsException\r\nRetry-After: 3\r\n",
            r#"{"message":"Too many requests"}"#,
            "TooManyRequestsException",
            Some(Duration::from_secs(3)),
        ),
    ];
    for (status, headers, body, code, retry_after) in cases {
        let (endpoint, seen) = failing_server(status, headers, body).await;
        let config = local_config(&endpoint).await;
        let calls = AwsCalls::new();
        let mailer = mailer(&calls, &config);
        let err = mailer
            .send(&email("orders@example.com", None))
            .await
            .unwrap_err();
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "{status}: one request, no SDK retry"
        );
        assert_eq!(
            (err.kind, err.code.as_str()),
            (SendErrorKind::Transient, code),
            "{err:?}"
        );
        assert_eq!(err.retry_after, retry_after);
        assert!(!has_full_address(&err.detail), "{err:?}");
        assert_eq!(calls.get("SESv2", "SendEmail").requests, 1);

        // The same client keeps the SDK's retries for other operations: the server would have
        // been retried.
        assert!(mailer.account().await.is_err());
        assert_eq!(
            seen.lock().unwrap().len(),
            1 + 3,
            "{status}: GetAccount retried"
        );
    }

    // Nothing listening: a network error, tried once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let calls = AwsCalls::new();
    let err = mailer(&calls, &local_config(&endpoint).await)
        .send(&email("orders@example.com", None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Transient, "network"),
        "{err:?}"
    );
    assert_eq!(calls.get("SESv2", "SendEmail").requests, 1);
}

/// moto keeps no message tags and no reply-to: what SES receives is checked on the wire.
#[tokio::test]
async fn the_request_carries_tags_reply_to_utf8_parts_and_the_configuration_set() {
    let (endpoint, seen) = failing_server("500 Internal Server Error", "", "{}").await;
    let config = local_config(&endpoint).await;
    let settings = SesSettings {
        configuration_set: Some("fleet-transactional".to_owned()),
        ..SesSettings::default()
    };
    let mailer = SesMailer::new(AwsCalls::new().sesv2_client(&config), settings);
    let mut sent = email("orders@example.com", Some("<p>Merci</p>"));
    sent.event_id = "3f2a9c1e-0b7d-4c55-9a7e-2d8f1a6b4c30".to_owned();
    let err = mailer.send(&sent).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Transient, "http_500")
    );

    let body: serde_json::Value = serde_json::from_str(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(
        body["EmailTags"],
        serde_json::json!([
            {"Name": "fleet-event-id", "Value": "3f2a9c1e-0b7d-4c55-9a7e-2d8f1a6b4c30"},
            {"Name": "fleet-template", "Value": "order_confirmation_v2"},
        ])
    );
    assert_eq!(
        body["ReplyToAddresses"],
        serde_json::json!(["help@example.com"])
    );
    assert_eq!(body["ConfigurationSetName"], "fleet-transactional");
    assert_eq!(
        body["Destination"]["ToAddresses"],
        serde_json::json!(["bob.jones@example.org"])
    );
    let simple = &body["Content"]["Simple"];
    assert_eq!(
        simple["Subject"],
        serde_json::json!({"Data": sent.subject, "Charset": "UTF-8"})
    );
    assert_eq!(
        simple["Body"]["Text"],
        serde_json::json!({"Data": sent.text, "Charset": "UTF-8"})
    );
    assert_eq!(
        simple["Body"]["Html"],
        serde_json::json!({"Data": "<p>Merci</p>", "Charset": "UTF-8"})
    );
}

async fn put_secure(config: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

fn get_parameter_calls(calls: &AwsCalls) -> u64 {
    calls.get("SSM", "GetParameter").calls
}

#[tokio::test]
async fn ssm_secrets_are_decrypted_cached_and_refreshed() {
    let config = moto::sdk_config().await;
    let name = format!("/{}/smtp-password", unique_name("fleet-test"));
    put_secure(&config, &name, "s3cret-one").await;
    let calls = AwsCalls::new();
    let secrets = SsmSecrets::new(calls.ssm_client(&config));

    let secret = secrets.get(&name).await.unwrap();
    assert_eq!(secret.expose(), "s3cret-one", "decrypted");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(get_parameter_calls(&calls), 1);

    // Rotated in SSM: the cache still answers the old value within its TTL, with no call.
    put_secure(&config, &name, "s3cret-two").await;
    assert_eq!(secrets.get(&name).await.unwrap().expose(), "s3cret-one");
    assert_eq!(get_parameter_calls(&calls), 1);

    // A refresh reads the rotated value and replaces the cached one.
    assert_eq!(secrets.refresh(&name).await.unwrap().expose(), "s3cret-two");
    assert_eq!(get_parameter_calls(&calls), 2);
    assert_eq!(secrets.get(&name).await.unwrap().expose(), "s3cret-two");
    assert_eq!(get_parameter_calls(&calls), 2);
}

#[tokio::test]
async fn ssm_secrets_expire_after_their_ttl_and_cold_reads_share_one_call() {
    let config = moto::sdk_config().await;
    let name = format!("/{}/api-key", unique_name("fleet-test"));
    put_secure(&config, &name, "key-1").await;
    let calls = AwsCalls::new();
    let secrets = SsmSecrets::new(calls.ssm_client(&config)).with_ttl(Duration::from_millis(300));

    let reads = futures::future::join_all((0..8).map(|_| secrets.get(&name))).await;
    assert!(
        reads
            .iter()
            .all(|r| r.as_ref().unwrap().expose() == "key-1")
    );
    assert_eq!(get_parameter_calls(&calls), 1, "eight cold reads, one call");

    put_secure(&config, &name, "key-2").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(secrets.get(&name).await.unwrap().expose(), "key-2");
    assert_eq!(get_parameter_calls(&calls), 2);
}

#[tokio::test]
async fn a_missing_ssm_parameter_is_not_found() {
    let config = moto::sdk_config().await;
    let name = format!("/{}/absent", unique_name("fleet-test"));
    let secrets = SsmSecrets::new(AwsCalls::new().ssm_client(&config));
    let err = secrets.get(&name).await.unwrap_err();
    assert!(
        matches!(&err, SecretError::NotFound { name: n } if *n == name),
        "{err:?}"
    );
    let err = secrets.refresh(&name).await.unwrap_err();
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
}

/// A `SendEmail` that SES never answers is cut by `send_timeout` once, and is `Unknown`: SES may
/// have it, so it is never sent again.
#[tokio::test]
async fn a_send_ses_never_answers_is_cut_by_its_timeout_as_unknown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0_u32));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            *count.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    let config = local_config(&endpoint).await;
    let settings = SesSettings {
        send_timeout: Duration::from_millis(500),
        ..SesSettings::default()
    };
    let mailer = SesMailer::new(AwsCalls::new().sesv2_client(&config), settings);
    let err = mailer
        .send(&email("orders@example.com", None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (SendErrorKind::Unknown, "timeout"),
        "{err}"
    );
    assert_eq!(*accepted.lock().unwrap(), 1, "one connection: no retry");
}
