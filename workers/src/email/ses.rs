//! The SES v2 mailer: one `SendEmail` per email, Simple content in UTF-8, the event id and the
//! template as message tags (so SES's event records name the request), and no retry of its own:
//! the SDK's retries are off for `SendEmail` (a retried send after a lost answer would send
//! twice; the email worker decides about retries once it has settled its claim).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::mailer::{Account, Mailer, OutgoingEmail, SendError, Sent};

/// The message tag naming the `email.requested` event.
pub const TAG_EVENT_ID: &str = "fleet-event-id";
/// The message tag naming the template.
pub const TAG_TEMPLATE: &str = "fleet-template";
/// SES accepts tag values of at most 256 characters.
const MAX_TAG_VALUE: usize = 256;
/// Every text part is sent as UTF-8.
const CHARSET: &str = "UTF-8";

/// `[email.ses]` in `fleet.toml`: how the SES mailer sends.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SesSettings {
    /// The SES configuration set every send names (event publishing, a dedicated IP pool), if
    /// any. A missing set fails each send with `NotFoundException` (transient: an operator can
    /// create it).
    pub configuration_set: Option<String>,
    /// How long one `SendEmail` may take; past it the send is abandoned as
    /// `delivery_unknown` (SES may have accepted it), never resent.
    #[serde(with = "humantime_serde")]
    pub send_timeout: std::time::Duration,
}

impl Default for SesSettings {
    fn default() -> Self {
        Self {
            configuration_set: None,
            send_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// A mailer on SES v2.
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    settings: SesSettings,
}

impl SesMailer {
    /// A mailer sending through `client` (build it with
    /// [`AwsCalls::sesv2_client`](crate::aws_calls::AwsCalls::sesv2_client) so its calls are
    /// counted).
    pub fn new(client: aws_sdk_sesv2::Client, settings: SesSettings) -> Self {
        Self { client, settings }
    }

    fn request(
        &self,
        email: &OutgoingEmail,
    ) -> Result<aws_sdk_sesv2::operation::send_email::builders::SendEmailFluentBuilder, SendError>
    {
        let mut body = Body::builder().text(utf8(&email.text)?);
        if let Some(html) = &email.html {
            body = body.html(utf8(html)?);
        }
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(body.build())
            .build();
        let mut request = self
            .client
            .send_email()
            .from_email_address(encode_sender(&email.from))
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.settings.configuration_set.clone());
        if let Some(reply_to) = &email.reply_to {
            request = request.reply_to_addresses(encode_sender(reply_to));
        }
        for tag in tags(email) {
            request = request.email_tags(tag?);
        }
        Ok(request)
    }
}

#[async_trait]
impl Mailer for SesMailer {
    fn name(&self) -> &'static str {
        "ses"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, SendError> {
        let output = self
            .request(email)?
            .customize()
            .config_override(
                aws_sdk_sesv2::config::Config::builder()
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        // Both limits: an override is merged with the client's own timeouts,
                        // whose 10 s attempt timeout would otherwise cap a longer send_timeout.
                        aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                            .operation_timeout(self.settings.send_timeout)
                            .operation_attempt_timeout(self.settings.send_timeout)
                            .build(),
                    ),
            )
            .send()
            .await
            .map_err(classify)?;
        let provider_id = output
            .message_id()
            .map(str::to_owned)
            // SES always answers an id; without one the send still happened.
            .unwrap_or_else(|| format!("ses-unknown-{}", email.event_id));
        Ok(Sent { provider_id })
    }

    /// `GetAccount`: the send rate and whether sending is enabled. (moto answers 404.)
    async fn account(&self) -> Result<Account, SendError> {
        let output = self.client.get_account().send().await.map_err(classify)?;
        Ok(Account {
            max_send_rate: output.send_quota().map(|q| q.max_send_rate()),
            sending_enabled: Some(output.sending_enabled()),
        })
    }
}

/// A UTF-8 text part.
fn utf8(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset(CHARSET)
        .build()
        .map_err(|e| SendError::rejected("invalid_request", e.to_string()))
}

/// The `fleet-event-id` tag, and `fleet-template` when there is a template.
fn tags(email: &OutgoingEmail) -> impl Iterator<Item = Result<MessageTag, SendError>> + '_ {
    let pairs = [
        Some((TAG_EVENT_ID, email.event_id.as_str())),
        email.template.as_deref().map(|t| (TAG_TEMPLATE, t)),
    ];
    pairs.into_iter().flatten().filter_map(|(name, value)| {
        let value = tag_value(value);
        (!value.is_empty()).then(|| {
            MessageTag::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| SendError::rejected("invalid_request", e.to_string()))
        })
    })
}

/// A tag value SES accepts: `[A-Za-z0-9_.@-]`, anything else becomes `_`, at most 256 characters.
pub fn tag_value(value: &str) -> String {
    value
        .chars()
        .take(MAX_TAG_VALUE)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `Name <address>` with a non-ASCII name, its name MIME-encoded (RFC 2047), which SES requires;
/// anything else unchanged.
fn encode_sender(sender: &str) -> Cow<'_, str> {
    let sender = sender.trim();
    let Some(open) = sender.rfind('<') else {
        return Cow::Borrowed(sender);
    };
    let name = sender[..open].trim().trim_matches('"');
    if name.is_ascii() {
        return Cow::Borrowed(sender);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(name);
    Cow::Owned(format!("=?UTF-8?B?{encoded}?= {}", &sender[open..]))
}

/// Every SES failure, classified in one place (see [`SendErrorKind`](super::SendErrorKind)).
fn classify<E>(err: SdkError<E, HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retry_after = err
        .raw_response()
        .and_then(|r| r.headers().get("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut error = match &err {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            // The error alone: the whole context would print the raw response too.
            let detail = match context.err().message() {
                Some(message) => message.to_owned(),
                None => format!("HTTP {status}: {}", DisplayErrorContext(context.err())),
            };
            match context.err().code() {
                Some(code) => by_code(code, status, &detail),
                None => by_status(&format!("http_{status}"), status, &detail),
            }
        }
        // The request may have reached SES: never sent again.
        SdkError::TimeoutError(_) => SendError::unknown("timeout", context_of(&err)),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            SendError::transient("connect_timeout", context_of(&err))
        }
        // SES answered, but the answer could not be read: it has the request.
        SdkError::ResponseError(_) => SendError::unknown("response_unreadable", context_of(&err)),
        // The request could not be sent or its connection failed (possibly after it was
        // written: the window the README names).
        SdkError::DispatchFailure(_) => SendError::transient("network", context_of(&err)),
        SdkError::ConstructionFailure(_) => {
            SendError::rejected("invalid_request", context_of(&err))
        }
        _ => SendError::transient("unknown", context_of(&err)),
    };
    error.retry_after = retry_after;
    error
}

/// The error and its causes, on one line.
fn context_of<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + 'static,
{
    DisplayErrorContext(err).to_string()
}

/// Whether an AWS error code says "too many requests" (the email worker counts these apart):
/// the bus's throttling codes, and those SES and its HTTP layer add.
pub fn is_throttling(code: &str) -> bool {
    fleet_bus::is_throttling_code(code)
        || matches!(
            code,
            "LimitExceededException" | "SlowDown" | "TooManyRequests"
        )
}

/// A service error by its AWS code; unknown codes by their HTTP status.
fn by_code(code: &str, status: u16, detail: &str) -> SendError {
    if is_throttling(code) {
        return SendError::transient(code, detail);
    }
    match code {
        // A missing configuration set: an operator can create it, the message can wait.
        "NotFoundException" => SendError::transient(code, detail),
        "MessageRejected" | "MailFromDomainNotVerifiedException" | "BadRequestException" => {
            SendError::rejected(code, detail)
        }
        // Every send fails the same way until an operator acts: pause rather than dead-letter.
        "SendingPausedException"
        | "AccountSuspendedException"
        | "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "RequestExpired"
        | "MissingAuthenticationToken"
        | "IncompleteSignature" => SendError::paused(code, detail),
        _ => by_status(code, status, detail),
    }
}

/// 5xx and 429 are transient; any other answer rejects the message.
fn by_status(code: &str, status: u16, detail: &str) -> SendError {
    if status >= 500 || status == 429 {
        SendError::transient(code, detail)
    } else {
        SendError::rejected(code, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::SendErrorKind;
    use aws_sdk_sesv2::error::ErrorMetadata;
    use aws_sdk_sesv2::operation::send_email::SendEmailError;

    fn service_error(status: u16, code: Option<&str>, message: &str) -> SendError {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let mut raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        raw.headers_mut().insert("Retry-After", "7");
        classify(SdkError::service_error(
            SendEmailError::generic(meta.build()),
            raw,
        ))
    }

    #[test]
    fn errors_are_classified_by_code_then_status() {
        let cases = [
            (
                429,
                Some("TooManyRequestsException"),
                SendErrorKind::Transient,
                "TooManyRequestsException",
            ),
            (
                400,
                Some("LimitExceededException"),
                SendErrorKind::Transient,
                "LimitExceededException",
            ),
            (
                400,
                Some("ThrottlingException"),
                SendErrorKind::Transient,
                "ThrottlingException",
            ),
            (
                404,
                Some("NotFoundException"),
                SendErrorKind::Transient,
                "NotFoundException",
            ),
            (
                400,
                Some("MessageRejected"),
                SendErrorKind::Rejected,
                "MessageRejected",
            ),
            (
                400,
                Some("MailFromDomainNotVerifiedException"),
                SendErrorKind::Rejected,
                "MailFromDomainNotVerifiedException",
            ),
            (
                400,
                Some("BadRequestException"),
                SendErrorKind::Rejected,
                "BadRequestException",
            ),
            (
                400,
                Some("SendingPausedException"),
                SendErrorKind::Paused,
                "SendingPausedException",
            ),
            (
                400,
                Some("AccountSuspendedException"),
                SendErrorKind::Paused,
                "AccountSuspendedException",
            ),
            (
                403,
                Some("AccessDeniedException"),
                SendErrorKind::Paused,
                "AccessDeniedException",
            ),
            (
                503,
                Some("InternalFailure"),
                SendErrorKind::Transient,
                "InternalFailure",
            ),
            (500, None, SendErrorKind::Transient, "http_500"),
            (404, None, SendErrorKind::Rejected, "http_404"),
            (
                400,
                Some("SomethingNew"),
                SendErrorKind::Rejected,
                "SomethingNew",
            ),
        ];
        for (status, code, kind, want) in cases {
            let e = service_error(status, code, "no <bob@example.com> today");
            assert_eq!((e.kind, e.code.as_str()), (kind, want), "{status} {code:?}");
            assert_eq!(e.detail, "no <b***@example.com> today");
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        }
    }

    #[test]
    fn tag_values_keep_only_what_ses_accepts() {
        assert_eq!(tag_value("order_confirmation"), "order_confirmation");
        assert_eq!(tag_value("3f2a-9c.x@y_z"), "3f2a-9c.x@y_z");
        assert_eq!(tag_value("a b/c:é"), "a_b_c__");
        assert_eq!(tag_value(&"x".repeat(300)).len(), MAX_TAG_VALUE);
    }

    #[test]
    fn non_ascii_sender_names_are_mime_encoded() {
        assert_eq!(encode_sender("orders@example.com"), "orders@example.com");
        assert_eq!(
            encode_sender("Fleet <o@example.com>"),
            "Fleet <o@example.com>"
        );
        assert_eq!(
            encode_sender("\"Café Fleet\" <o@example.com>"),
            "=?UTF-8?B?Q2Fmw6kgRmxlZXQ=?= <o@example.com>"
        );
    }
}
