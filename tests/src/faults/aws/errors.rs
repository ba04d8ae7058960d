//! The AWS errors the proxy answers with, in the exact shapes the services send and the SDK for
//! Rust parses: SQS's JSON protocol with its query-compatible header, DynamoDB's JSON `__type`,
//! and the query protocol's XML `ErrorResponse` (SNS).

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};

/// An AWS error the proxy can answer a call with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsError {
    /// The account's API rate is exceeded: SQS and DynamoDB `ThrottlingException`, SNS
    /// `Throttling` (HTTP 400).
    Throttling,
    /// SQS's own `RequestThrottled` (HTTP 400; other services get the same code).
    RequestThrottled,
    /// DynamoDB's `ProvisionedThroughputExceededException` (HTTP 400).
    ProvisionedThroughputExceeded,
    /// DynamoDB's `TransactionCanceledException` with a `TransactionConflict` reason for the
    /// first action of the transaction and `None` for the others (HTTP 400).
    TransactionConflict,
    /// The service failed: `InternalError` (SQS, SNS) or `InternalServerError` (DynamoDB), HTTP 500.
    InternalError,
    /// A bare HTTP 500 with an empty body, as a load balancer in front of a service may send.
    BareServerError,
}

/// How the called service speaks, which decides the error's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// SQS: JSON 1.0 with the old query code in `x-amzn-query-error`.
    SqsJson,
    /// DynamoDB: JSON 1.0 with the code in `__type`.
    DynamoJson,
    /// SNS, STS: form-encoded requests, XML answers.
    Query,
}

/// What an error looks like, whatever the protocol.
struct Shape {
    status: u16,
    code: &'static str,
    /// The namespace of the `__type` of the JSON protocols.
    namespace: &'static str,
    /// `Sender` (the caller's fault, throttling included) or `Receiver`.
    fault: &'static str,
    message: &'static str,
}

const COMMON_NS: &str = "com.amazon.coral.availability";
const SQS_NS: &str = "com.amazonaws.sqs";
const DYNAMODB_NS: &str = "com.amazonaws.dynamodb.v20120810";

impl AwsError {
    fn shape(self, protocol: Protocol) -> Shape {
        let sender = |code, namespace, message| Shape {
            status: 400,
            code,
            namespace,
            fault: "Sender",
            message,
        };
        match (self, protocol) {
            (AwsError::Throttling, Protocol::Query) => sender("Throttling", "", "Rate exceeded"),
            (AwsError::Throttling, _) => sender("ThrottlingException", COMMON_NS, "Rate exceeded"),
            (AwsError::RequestThrottled, _) => {
                sender("RequestThrottled", SQS_NS, "Request is throttled.")
            }
            (AwsError::ProvisionedThroughputExceeded, _) => sender(
                "ProvisionedThroughputExceededException",
                DYNAMODB_NS,
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API.",
            ),
            (AwsError::TransactionConflict, _) => sender(
                "TransactionCanceledException",
                DYNAMODB_NS,
                "Transaction cancelled, please refer cancellation reasons for specific reasons \
                 [TransactionConflict]",
            ),
            (AwsError::InternalError | AwsError::BareServerError, Protocol::DynamoJson) => Shape {
                status: 500,
                code: "InternalServerError",
                namespace: DYNAMODB_NS,
                fault: "Receiver",
                message: "Internal server error",
            },
            (AwsError::InternalError | AwsError::BareServerError, _) => Shape {
                status: 500,
                code: "InternalError",
                namespace: SQS_NS,
                fault: "Receiver",
                message: "We encountered an internal error. Please try again.",
            },
        }
    }

    /// The answer to a call in `protocol` whose request body was `request`.
    pub(crate) fn response(
        self,
        protocol: Protocol,
        request: &[u8],
        request_id: &str,
    ) -> Response<Full<Bytes>> {
        let shape = self.shape(protocol);
        if self == AwsError::BareServerError {
            return respond(500, None, Vec::new(), String::new());
        }
        let id = ("x-amzn-RequestId", request_id.to_owned());
        match protocol {
            Protocol::SqsJson => {
                let body = serde_json::json!({
                    "__type": format!("{}#{}", shape.namespace, shape.code),
                    "message": shape.message,
                });
                // The SDK takes the code from this header, not from `__type`: SQS's JSON
                // protocol keeps the query protocol's codes.
                let query = (
                    "x-amzn-query-error",
                    format!("{};{}", shape.code, shape.fault),
                );
                respond(shape.status, Some(JSON), vec![id, query], body.to_string())
            }
            Protocol::DynamoJson => {
                let mut body = serde_json::json!({
                    "__type": format!("{}#{}", shape.namespace, shape.code),
                    "message": shape.message,
                });
                if self == AwsError::TransactionConflict {
                    body = serde_json::json!({
                        "__type": format!("{}#{}", shape.namespace, shape.code),
                        "Message": shape.message,
                        "CancellationReasons": cancellation_reasons(request),
                    });
                }
                respond(shape.status, Some(JSON), vec![id], body.to_string())
            }
            Protocol::Query => {
                let body = format!(
                    "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                     <Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>\
                     <RequestId>{request_id}</RequestId></ErrorResponse>",
                    shape.fault, shape.code, shape.message
                );
                respond(shape.status, Some("text/xml"), vec![id], body)
            }
        }
    }
}

const JSON: &str = "application/x-amz-json-1.0";

/// One reason per action of the transaction, as DynamoDB sends them: the conflicting action's
/// code, `None` for the others.
fn cancellation_reasons(request: &[u8]) -> serde_json::Value {
    let actions = serde_json::from_slice::<serde_json::Value>(request)
        .ok()
        .and_then(|v| {
            v.get("TransactItems")
                .and_then(|i| i.as_array())
                .map(Vec::len)
        })
        .unwrap_or(1)
        .max(1);
    let reasons: Vec<serde_json::Value> = (0..actions)
        .map(|i| {
            if i == 0 {
                serde_json::json!({
                    "Code": "TransactionConflict",
                    "Message": "Transaction is ongoing for the item",
                })
            } else {
                serde_json::json!({ "Code": "None" })
            }
        })
        .collect();
    serde_json::Value::Array(reasons)
}

fn respond(
    status: u16,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(t) = content_type {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(t));
    }
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(r: &Response<Full<Bytes>>, name: &str) -> Option<String> {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[test]
    fn sqs_errors_carry_the_query_code_in_a_header() {
        let r = AwsError::RequestThrottled.response(Protocol::SqsJson, b"{}", "id-1");
        assert_eq!(r.status(), 400);
        assert_eq!(
            header(&r, "x-amzn-query-error").as_deref(),
            Some("RequestThrottled;Sender")
        );
        assert_eq!(header(&r, "content-type").as_deref(), Some(JSON));
        let r = AwsError::InternalError.response(Protocol::SqsJson, b"{}", "id-1");
        assert_eq!(r.status(), 500);
        assert_eq!(
            header(&r, "x-amzn-query-error").as_deref(),
            Some("InternalError;Receiver")
        );
    }

    #[test]
    fn a_cancelled_transaction_has_one_reason_per_action() {
        let request = br#"{"TransactItems": [{"Put": {}}, {"Put": {}}, {"Update": {}}]}"#;
        let reasons = cancellation_reasons(request);
        let codes: Vec<&str> = reasons
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["Code"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(codes, ["TransactionConflict", "None", "None"]);
        assert_eq!(
            cancellation_reasons(b"not json").as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_bare_server_error_has_no_body_and_no_code() {
        let r = AwsError::BareServerError.response(Protocol::Query, b"", "id");
        assert_eq!(r.status(), 500);
        assert!(header(&r, "x-amzn-query-error").is_none());
        assert!(header(&r, "content-type").is_none());
    }
}
