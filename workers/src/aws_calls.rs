//! Counting AWS calls by service and operation, from inside the SDK: an interceptor on every
//! client Fleet builds. What it counts is what AWS bills and what a role must allow: requests
//! (each attempt, the SDK's own retries included), operations, and failed operations.
//!
//! Each count goes to the `metrics` registry (`fleet_aws_requests_total` by `operation`,
//! `fleet_aws_errors_total` by `operation` and `error_type`; the operation in the IAM action form
//! a policy names, `sqs:ReceiveMessage`) and to the [`AwsCalls`] itself, which tests and `fleet`
//! commands read directly (by the SDK's service name, `SQS`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    Error as InterceptorError, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata, OrchestratorError};
use fleet_bus::aws::SqsTransport;

use crate::iam_actions::IssuedActions;

pub use crate::observe::metrics::{AWS_ERRORS, AWS_REQUESTS};

/// What one operation cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Operations called (one per `send()`).
    pub calls: u64,
    /// HTTP requests sent: calls plus the SDK's retries.
    pub requests: u64,
    /// Operations that ended in an error.
    pub errors: u64,
}

/// Shared counts of AWS calls; clone it into every client builder.
#[derive(Clone, Debug, Default)]
pub struct AwsCalls {
    counts: Arc<Mutex<BTreeMap<(String, String), CallCount>>>,
    /// The IAM actions behind the calls, recorded by the same clients.
    issued: IssuedActions,
}

impl AwsCalls {
    /// Empty counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation called so far, keyed by (service, operation), e.g. `("DynamoDB", "PutItem")`.
    pub fn snapshot(&self) -> BTreeMap<(String, String), CallCount> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The count of one operation of one service.
    pub fn get(&self, service: &str, operation: &str) -> CallCount {
        self.snapshot()
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Operations called on one service, summed over the named operations.
    pub fn calls_of(&self, service: &str, operations: &[&str]) -> u64 {
        operations
            .iter()
            .map(|op| self.get(service, op).calls)
            .sum()
    }

    fn record(&self, meta: &Metadata, f: impl FnOnce(&mut CallCount)) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (meta.service().to_owned(), meta.name().to_owned());
        f(counts.entry(key).or_default());
    }

    /// The IAM actions, resources and key patterns these clients issued.
    pub fn issued(&self) -> &IssuedActions {
        &self.issued
    }

    /// The interceptor to add to a client's configuration.
    pub fn interceptor(&self) -> CountingInterceptor {
        CountingInterceptor {
            calls: self.clone(),
        }
    }

    /// A DynamoDB client from `config` that counts its calls here.
    pub fn dynamodb_client(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(self.issued.interceptor("dynamodb"))
            .interceptor(crate::cost::units::UnitsInterceptor)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// An SES v2 client from `config` that counts its calls here.
    pub fn sesv2_client(&self, config: &SdkConfig) -> aws_sdk_sesv2::Client {
        let conf = aws_sdk_sesv2::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(self.issued.interceptor("ses"))
            .build();
        aws_sdk_sesv2::Client::from_conf(conf)
    }

    /// An SSM client from `config` that counts its calls here.
    pub fn ssm_client(&self, config: &SdkConfig) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(self.issued.interceptor("ssm"))
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    /// The SQS and SNS transport from `config`, its clients counting their calls here.
    pub fn sqs_transport(&self, config: &SdkConfig) -> SqsTransport {
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(self.issued.interceptor("sqs"))
            .build();
        let sns = aws_sdk_sns::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(self.issued.interceptor("sns"))
            .build();
        SqsTransport::from_clients(
            config,
            aws_sdk_sqs::Client::from_conf(sqs),
            aws_sdk_sns::Client::from_conf(sns),
        )
    }
}

impl fmt::Display for AwsCalls {
    /// One line per operation: `DynamoDB TransactWriteItems calls 12 requests 12 errors 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((service, op), c) in self.snapshot() {
            writeln!(
                f,
                "{service:<9} {op:<28} calls {:>6}  requests {:>6}  errors {:>4}",
                c.calls, c.requests, c.errors
            )?;
        }
        Ok(())
    }
}

/// The SDK interceptor behind [`AwsCalls`].
#[derive(Clone, Debug)]
pub struct CountingInterceptor {
    calls: AwsCalls,
}

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "fleet-aws-calls"
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.calls.record(meta, |c| c.requests += 1);
            metrics::counter!(AWS_REQUESTS, "operation" => iam_action(meta.service(), meta.name()))
                .increment(1);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let failed = matches!(context.output_or_error(), Some(Err(_)));
            self.calls.record(meta, |c| {
                c.calls += 1;
                c.errors += u64::from(failed);
            });
            if let Some(Err(error)) = context.output_or_error() {
                let error_type = error_type_of(error, context.response());
                metrics::counter!(AWS_ERRORS, "operation" => iam_action(meta.service(), meta.name()), "error_type" => error_type)
                    .increment(1);
            }
        }
        Ok(())
    }
}

/// An operation as the IAM action a policy names: `sqs:ReceiveMessage`, `ses:SendEmail`.
pub fn iam_action(service: &str, operation: &str) -> String {
    format!("{}:{operation}", iam_prefix(service))
}

/// The IAM service prefix of an SDK service name (`SESv2` is `ses`).
fn iam_prefix(service: &str) -> String {
    match service {
        "SQS" => "sqs".into(),
        "SNS" => "sns".into(),
        "DynamoDB" => "dynamodb".into(),
        "SESv2" | "SES" => "ses".into(),
        "SSM" => "ssm".into(),
        "CloudWatch" => "cloudwatch".into(),
        "STS" => "sts".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// The bounded class of a failed operation (the `error_type` label).
fn error_type_of(
    error: &OrchestratorError<InterceptorError>,
    response: Option<&HttpResponse>,
) -> &'static str {
    if error.is_timeout_error() {
        return "timeout";
    }
    if let Some(connector) = error.as_connector_error() {
        return if connector.is_timeout() {
            "timeout"
        } else {
            "network"
        };
    }
    match response {
        Some(r) => error_type(Some(r.status().as_u16()), error_code(r).as_deref()),
        None => "other",
    }
}

/// The AWS error code of a response: from the header SQS's JSON protocol keeps its old code in,
/// the header of the REST JSON protocols (SES v2), the JSON body's `__type` (DynamoDB), or the
/// XML body's `<Code>` (SNS, STS).
fn error_code(response: &HttpResponse) -> Option<String> {
    let headers = response.headers();
    if let Some(v) = headers.get("x-amzn-query-error") {
        return Some(v.split(';').next().unwrap_or(v).to_owned());
    }
    if let Some(v) = headers.get("x-amzn-errortype") {
        return Some(v.split(':').next().unwrap_or(v).to_owned());
    }
    code_in_body(response.body().bytes()?)
}

fn code_in_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(text) {
        let code = o.get("__type").or_else(|| o.get("code"))?.as_str()?;
        return Some(code.rsplit('#').next().unwrap_or(code).to_owned());
    }
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].to_owned())
}

/// The bounded class of an AWS error by its HTTP status and code: `throttled`, `not_found`,
/// `access_denied`, `service` (5xx), `client` (another 4xx) or `other`.
pub fn error_type(status: Option<u16>, code: Option<&str>) -> &'static str {
    let code = code.unwrap_or_default();
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    let has = |part: &str| code.contains(part);
    if status == Some(429)
        || crate::email::ses::is_throttling(code)
        || code == "ProvisionedThroughputExceededException"
    {
        "throttled"
    } else if status == Some(404) || has("NotFound") || has("NonExistent") || has("DoesNotExist") {
        "not_found"
    } else if matches!(status, Some(401 | 403))
        || has("AccessDenied")
        || has("Authorization")
        || has("UnrecognizedClient")
        || has("InvalidClientTokenId")
        || has("SignatureDoesNotMatch")
        || has("ExpiredToken")
    {
        "access_denied"
    } else if status.is_some_and(|s| s >= 500) || has("InternalError") || has("ServiceUnavailable")
    {
        "service"
    } else if status.is_some_and(|s| (400..500).contains(&s)) {
        "client"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_as_iam_actions() {
        assert_eq!(iam_action("SQS", "ReceiveMessage"), "sqs:ReceiveMessage");
        assert_eq!(iam_action("SNS", "PublishBatch"), "sns:PublishBatch");
        assert_eq!(
            iam_action("DynamoDB", "TransactWriteItems"),
            "dynamodb:TransactWriteItems"
        );
        assert_eq!(iam_action("SESv2", "SendEmail"), "ses:SendEmail");
        assert_eq!(iam_action("SSM", "GetParameter"), "ssm:GetParameter");
        assert_eq!(
            iam_action("CloudWatch", "GetMetricStatistics"),
            "cloudwatch:GetMetricStatistics"
        );
        assert_eq!(
            iam_action("STS", "GetCallerIdentity"),
            "sts:GetCallerIdentity"
        );
    }

    #[test]
    fn errors_fall_into_bounded_classes() {
        let cases = [
            (Some(400), Some("ThrottlingException"), "throttled"),
            (
                Some(400),
                Some("ProvisionedThroughputExceededException"),
                "throttled",
            ),
            (Some(429), Some("TooManyRequestsException"), "throttled"),
            (
                Some(400),
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                "not_found",
            ),
            (Some(400), Some("QueueDoesNotExist"), "not_found"),
            (Some(400), Some("ResourceNotFoundException"), "not_found"),
            (Some(404), Some("NotFoundException"), "not_found"),
            (Some(400), Some("ParameterNotFound"), "not_found"),
            (Some(403), Some("AccessDenied"), "access_denied"),
            (Some(400), Some("AccessDeniedException"), "access_denied"),
            (Some(403), Some("AuthorizationError"), "access_denied"),
            (
                Some(400),
                Some("UnrecognizedClientException"),
                "access_denied",
            ),
            (Some(500), Some("InternalError"), "service"),
            (Some(503), None, "service"),
            (Some(400), Some("ValidationException"), "client"),
            (Some(400), Some("ConditionalCheckFailedException"), "client"),
            (None, None, "other"),
        ];
        for (status, code, class) in cases {
            assert_eq!(error_type(status, code), class, "{status:?} {code:?}");
        }
    }

    #[test]
    fn codes_are_read_from_json_and_xml_bodies() {
        assert_eq!(
            code_in_body(
                br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"x"}"#
            )
            .as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(
            code_in_body(
                b"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code></Error></ErrorResponse>"
            )
            .as_deref(),
            Some("NotFound")
        );
        assert_eq!(code_in_body(b"gateway timeout"), None);
    }
}
