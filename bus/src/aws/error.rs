//! AWS SDK errors as bus errors: with the resource, the operation and the AWS error code, and
//! classified as retryable (throttling, 5xx, network) or not.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::error::{BusError, THROTTLING_CODES};

/// SQS's JSON protocol keeps the old query-protocol codes (`AWS.SimpleQueueService.X`); the bus
/// uses the short form everywhere, so the embedded transport and SQS report the same code.
pub(crate) fn normalize_code(code: &str) -> &str {
    match code.strip_prefix("AWS.SimpleQueueService.") {
        Some("NonExistentQueue") => "QueueDoesNotExist",
        Some(short) => short,
        None => code,
    }
}

/// Whether an error with this HTTP status and code may succeed when tried again.
pub(crate) fn is_retryable(status: Option<u16>, code: &str) -> bool {
    status.is_some_and(|s| s >= 500 || s == 429)
        || THROTTLING_CODES.contains(&code)
        || code == "ServiceUnavailable"
        || code == "InternalError"
}

/// Maps an SDK error (of any AWS client) to a [`BusError::Api`] with context: the resource, the
/// operation, the AWS error code, and whether a later try may succeed.
pub fn sdk_error<E>(
    resource: &str,
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = match (&err, err.code()) {
        (_, Some(code)) => normalize_code(code).to_owned(),
        (SdkError::TimeoutError(_), None) => "RequestTimeout".to_owned(),
        (SdkError::DispatchFailure(_), None) => "NetworkError".to_owned(),
        (SdkError::ResponseError(_), None) => "UnparseableResponse".to_owned(),
        (SdkError::ConstructionFailure(_), None) => "InvalidRequest".to_owned(),
        (_, None) => status.map_or_else(|| "Unknown".to_owned(), |s| format!("Http{s}")),
    };
    let retryable = match &err {
        // A response cut mid-body (or garbled in transit) is a transport fault like a reset
        // connection: the call is tried again.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ConstructionFailure(_) => false,
        _ => is_retryable(status, &code),
    };
    let message = err
        .message()
        .map_or_else(|| short_context(&err), str::to_owned);
    BusError::Api {
        resource: resource.to_owned(),
        operation,
        code,
        message,
        retryable,
        source: Some(Box::new(err)),
    }
}

/// Longest error text kept in a message; the whole error stays available through `source()`.
const MAX_MESSAGE_CHARS: usize = 200;

/// An SDK error without a service message, in one short line: what kind of failure, and its root
/// cause. `DisplayErrorContext` would also dump the raw response.
fn short_context(err: &(dyn std::error::Error + 'static)) -> String {
    let mut root = err.source();
    while let Some(next) = root.and_then(std::error::Error::source) {
        root = Some(next);
    }
    let text = match root {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    };
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An SDK builder refused a request we built: a bug or an invalid value.
pub(crate) fn build_error(
    resource: &str,
    operation: &'static str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> BusError {
    BusError::Api {
        resource: resource.to_owned(),
        operation,
        code: "InvalidRequest".to_owned(),
        message: err.to_string(),
        retryable: false,
        source: Some(Box::new(err)),
    }
}

/// Whether an error says the queue does not exist.
pub(crate) fn is_missing_queue(e: &BusError) -> bool {
    e.code() == Some("QueueDoesNotExist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_codes_are_shortened() {
        assert_eq!(
            normalize_code("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
            "TooManyEntriesInBatchRequest"
        );
        assert_eq!(
            normalize_code("AWS.SimpleQueueService.NonExistentQueue"),
            "QueueDoesNotExist"
        );
        assert_eq!(
            normalize_code("ReceiptHandleIsInvalid"),
            "ReceiptHandleIsInvalid"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert!(is_retryable(Some(400), "ThrottlingException"));
        assert!(is_retryable(Some(503), "Whatever"));
        assert!(is_retryable(Some(429), "SlowDown"));
        // DynamoDB's throttling (a 400): a 20-minute chaos run saw the idempotency store refuse
        // it, so a sent email went unmarked.
        assert!(is_retryable(
            Some(400),
            "ProvisionedThroughputExceededException"
        ));
        assert!(!is_retryable(Some(400), "InvalidParameterValue"));
        assert!(!is_retryable(None, "ReceiptHandleIsInvalid"));
    }

    #[test]
    fn a_response_cut_mid_body_is_retried_and_reported_short() {
        use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
        let body = format!("{{\"Successful\": [{{\"Id\": \"0{}", "x".repeat(2000));
        let raw = HttpResponse::new(200u16.try_into().expect("status"), body.into());
        let err: SdkError<DeleteMessageBatchError, HttpResponse> =
            SdkError::response_error("unexpected end of input while parsing", raw);
        let e = sdk_error("fleet-orders", "DeleteMessageBatch", err);
        assert_eq!(e.code(), Some("UnparseableResponse"));
        assert!(e.is_retryable(), "a cut response is a transport fault: {e}");
        let text = e.to_string();
        assert!(text.len() < 300, "one short line, no response dump: {text}");
        assert!(text.contains("unexpected end of input"), "{text}");
    }
}
