//! SES on the emulator: verifying a sender (SES v2 `CreateEmailIdentity`, which moto 5.2 counts
//! as verified) and reading what moto "sent", from its state dump at `GET /moto-api/data.json`
//! (`ses` → `Message`).
//!
//! What moto keeps of an SES v2 Simple send: the id, the sender, the destinations, the subject and
//! ONE body: the HTML part when there is one, else the text part. It keeps neither the message
//! tags, nor the reply-to addresses, nor the configuration set.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;

/// One email moto accepted through SES (`SendEmail`, v1 or v2 Simple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentEmail {
    /// The `MessageId` SES answered.
    pub id: String,
    /// The sender as given (`Fleet <orders@example.com>` or a bare address).
    pub source: String,
    /// Every destination address (to, cc, bcc).
    pub destinations: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The HTML body when the send had one, else the text body (moto keeps only one).
    pub body: String,
}

/// Verifies `address` as a sender on the emulator (SES v2 `CreateEmailIdentity`); an identity
/// that exists already is fine.
///
/// # Panics
/// When the emulator refuses.
pub async fn verify_sender(config: &SdkConfig, address: &str) {
    let client = aws_sdk_sesv2::Client::new(config);
    match client
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) => {}
        Err(e) => panic!(
            "verify the sender on moto: {}",
            aws_sdk_sesv2::error::DisplayErrorContext(&e)
        ),
    }
}

/// Every email moto has accepted through SES so far, oldest first.
///
/// # Panics
/// When moto's state cannot be read or has an unexpected shape.
pub fn sent_emails() -> Vec<SentEmail> {
    let state = moto_state(&crate::moto::moto().endpoint);
    let messages = state
        .pointer("/ses/Message")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    messages.iter().map(sent_email).collect()
}

/// The emails sent with the `MessageId` `id` (exactly one, when the send was recorded once).
pub fn sent_with_id(id: &str) -> Vec<SentEmail> {
    sent_emails().into_iter().filter(|m| m.id == id).collect()
}

fn sent_email(message: &Value) -> SentEmail {
    let text = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("moto's SES message has no string {key}: {message}"))
            .to_owned()
    };
    let destinations = message
        .get("destinations")
        .and_then(Value::as_object)
        .map(|kinds| {
            ["ToAddresses", "CcAddresses", "BccAddresses"]
                .iter()
                .filter_map(|k| kinds.get(*k).and_then(Value::as_array))
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    SentEmail {
        id: text("id"),
        source: text("source"),
        destinations,
        subject: text("subject"),
        body: text("body"),
    }
}

/// moto's whole state, `GET {endpoint}/moto-api/data.json`, over plain HTTP/1.0. moto builds the
/// dump by walking its backends while other requests change them, and then answers 500 now and
/// then: it is asked again, up to 20 times.
///
/// # Panics
/// When every try fails or the answer is not JSON.
pub fn moto_state(endpoint: &str) -> Value {
    let mut last = String::new();
    for _ in 0..20 {
        match moto_state_once(endpoint) {
            Ok(state) => return state,
            Err(head) => last = head,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto's state: {last}");
}

fn moto_state_once(endpoint: &str) -> Result<Value, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connect to moto");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    write!(
        stream,
        "GET /moto-api/data.json HTTP/1.0\r\nHost: {authority}\r\n\r\n"
    )
    .expect("ask moto for its state");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read moto's state");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer from moto");
    let head = String::from_utf8_lossy(&answer[..split]);
    if !(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")) {
        return Err(head.into_owned());
    }
    Ok(serde_json::from_slice(&answer[split + 4..]).expect("moto's state is JSON"))
}
