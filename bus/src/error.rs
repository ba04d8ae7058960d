//! The one error type of `fleet-bus`.

use std::error::Error as StdError;

/// A boxed error that can cross tasks.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in the bus: a refused API call, a bad declaration, a consumer that
/// cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A queue or topic API call failed. `code` is the AWS error code (`ReceiptHandleIsInvalid`,
    /// `TooManyEntriesInBatchRequest`, ...); the embedded transport uses the same codes.
    #[error("{operation} on {resource} failed with {code}: {message}")]
    Api {
        /// Queue or topic name the call was for.
        resource: String,
        /// The API operation, as AWS names it (`SendMessageBatch`).
        operation: &'static str,
        /// The AWS error code.
        code: String,
        /// What the service said.
        message: String,
        /// Whether trying again later can succeed (throttling, 5xx, network).
        retryable: bool,
        /// The underlying SDK error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A queue, topic or subscription that does not exist.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// `queue`, `topic` or `subscription`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A topology declaration that cannot be applied.
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A topology file that cannot be read or parsed.
    #[error("cannot read topology {path}")]
    TopologyFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A subscription filter policy that SNS would refuse.
    #[error("invalid filter policy")]
    FilterPolicy(#[from] crate::sns::FilterPolicyError),
    /// A body that claims to be an SNS notification but is malformed.
    #[error("invalid SNS envelope: {0}")]
    Envelope(String),
    /// A consumer or producer configuration that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Something inside Fleet went wrong that no setting explains (a task of the engine failed).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The class of an API error code (see [`BusError::error_type`]).
fn api_error_type(code: &str, retryable: bool) -> &'static str {
    match code {
        c if THROTTLING_CODES.contains(&c) => "throttled",
        "RequestTimeout" | "RequestTimeoutException" => "timeout",
        "NetworkError" | "UnparseableResponse" => "network",
        c if NOT_FOUND_CODES.contains(&c) => "not_found",
        c if ACCESS_DENIED_CODES.contains(&c) => "access_denied",
        "Unknown" => "other",
        _ if retryable => "service",
        _ => "client",
    }
}

/// An error and its causes on one line, `outer: inner: innermost`, each level once: a level whose
/// text the previous one already shows (many errors print their source in their own message) is
/// skipped.
pub fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let own = c.to_string();
        if !own.is_empty() && !text.contains(&own) {
            text.push_str(": ");
            text.push_str(&own);
        }
        cause = c.source();
    }
    text
}

/// Whether an AWS error code is one of the throttling codes the bus retries after a pause; the
/// one list, which the workers' classifications extend rather than copy.
pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// Error codes AWS uses for throttling: always worth a retry after a pause.
pub(crate) const THROTTLING_CODES: [&str; 10] = [
    "KmsThrottled",
    "ProvisionedThroughputExceededException",
    "ThrottledException",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "OverLimit",
];

/// Error codes that say the caller may not do this.
const ACCESS_DENIED_CODES: [&str; 9] = [
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "KMS.AccessDeniedException",
];

/// Error codes that say a queue, topic or table does not exist.
const NOT_FOUND_CODES: [&str; 4] = [
    "QueueDoesNotExist",
    "NotFound",
    "NotFoundException",
    "ResourceNotFoundException",
];

impl BusError {
    /// A bounded class of this error, for the `error_type` metric label and for rate limiting
    /// log lines: `throttled`, `timeout`, `network`, `not_found`, `access_denied`, `service`
    /// (a server-side fault), `client` (a request the service refused) or `other`.
    pub fn error_type(&self) -> &'static str {
        match self {
            BusError::Api {
                code, retryable, ..
            } => api_error_type(code, *retryable),
            BusError::NotFound { .. } => "not_found",
            BusError::Topology(_)
            | BusError::TopologyFile { .. }
            | BusError::FilterPolicy(_)
            | BusError::Envelope(_)
            | BusError::Config(_) => "client",
            BusError::Internal(_) => "other",
        }
    }

    /// The AWS error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            BusError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the failed call may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BusError::Api {
                retryable: true,
                ..
            }
        )
    }

    /// A call that got no answer within `after`: retryable.
    pub(crate) fn timeout(
        resource: &str,
        operation: &'static str,
        after: std::time::Duration,
    ) -> Self {
        BusError::Api {
            resource: resource.to_owned(),
            operation,
            code: "RequestTimeout".to_owned(),
            message: format!("no answer within {after:?}"),
            retryable: true,
            source: None,
        }
    }

    /// An error the service (or the embedded transport) returned for a bad request.
    pub(crate) fn invalid(
        resource: &str,
        operation: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        BusError::Api {
            resource: resource.to_owned(),
            operation,
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, retryable: bool) -> BusError {
        BusError::Api {
            resource: "q".into(),
            operation: "ReceiveMessage",
            code: code.into(),
            message: String::new(),
            retryable,
            source: None,
        }
    }

    #[test]
    fn error_types_are_a_small_fixed_set() {
        let cases = [
            (api("ThrottlingException", true), "throttled"),
            (api("RequestThrottled", true), "throttled"),
            (
                BusError::timeout("q", "ReceiveMessage", std::time::Duration::from_secs(1)),
                "timeout",
            ),
            (api("NetworkError", true), "network"),
            (api("QueueDoesNotExist", false), "not_found"),
            (
                BusError::NotFound {
                    kind: "queue",
                    name: "q".into(),
                },
                "not_found",
            ),
            (api("AccessDenied", false), "access_denied"),
            (api("InternalError", true), "service"),
            (api("Http503", true), "service"),
            (api("InvalidParameterValue", false), "client"),
            (api("Unknown", false), "other"),
            (BusError::Internal("x".into()), "other"),
        ];
        for (e, expected) in cases {
            assert_eq!(e.error_type(), expected, "{e}");
        }
    }
}
