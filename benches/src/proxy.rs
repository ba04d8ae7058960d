//! A counting HTTP proxy between one consumer and moto: it forwards every request untouched and
//! counts them by operation, read the way SQS routes them (the JSON protocol's `X-Amz-Target`,
//! `AmazonSQS.ReceiveMessage`; the query protocol's `Action=`), and counts the messages that
//! `ReceiveMessage` answers carry. Modelled on the fault proxy of `fleet-tests`
//! (`tests/src/faults/aws.rs`), without the faults.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The proxy; it stops when dropped.
#[derive(Debug)]
pub struct CountingProxy {
    endpoint: String,
    counts: Arc<Mutex<Counts>>,
    _stop: DropGuard,
}

/// What went through the proxy.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Requests by operation (`ReceiveMessage`, `DeleteMessageBatch`...; `?` when unreadable).
    pub requests: BTreeMap<String, u64>,
    /// Messages in the answers to `ReceiveMessage`.
    pub messages_received: u64,
    /// TCP connections the consumer opened (its HTTP client's pool reuses them).
    pub connections: u64,
}

impl Counts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

impl CountingProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`http://host:port`).
    ///
    /// # Errors
    /// When `upstream` is not an address, or no port can be bound.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let upstream: SocketAddr = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .parse()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, upstream, counts.clone(), stop.clone()));
        Ok(Self {
            endpoint,
            counts,
            _stop: stop.drop_guard(),
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the consumer.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What went through so far.
    pub fn counts(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    counts: Arc<Mutex<Counts>>,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .connections += 1;
        let counts = counts.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |r| handle(upstream, counts.clone(), r));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = stop.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

/// The operation of a request, from its target header or its form body.
fn operation_of(request: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target
            .split_once('.')
            .map_or(target, |(_, operation)| operation)
            .to_owned();
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|form| {
            form.split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Messages in a `ReceiveMessage` answer: the JSON protocol's `Messages`, or the query
/// protocol's `<Message>` elements.
fn messages_in(answer: &[u8]) -> u64 {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(answer) {
        return json
            .get("Messages")
            .and_then(serde_json::Value::as_array)
            .map_or(0, |m| m.len() as u64);
    }
    let text = String::from_utf8_lossy(answer);
    text.matches("<Message>").count() as u64
}

async fn handle(
    upstream: SocketAddr,
    counts: Arc<Mutex<Counts>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(bad_gateway(&e)),
    };
    let operation = operation_of(&parts, &body);
    // Counted on arrival: a request the client abandons (a long poll cut at shutdown) still
    // reached the service.
    *counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .requests
        .entry(operation.clone())
        .or_default() += 1;
    Ok(match forward(upstream, parts, body).await {
        Ok((response, answer)) => {
            if operation == "ReceiveMessage" && response.status().is_success() {
                counts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .messages_received += messages_in(&answer);
            }
            response
        }
        Err(e) => bad_gateway(&e),
    })
}

/// Sends the request to moto on a fresh connection and returns its whole answer (and its body,
/// to count the messages in it), without moto's `Connection: close`: the consumer's own
/// connection stays open, as it does to SQS.
async fn forward(
    upstream: SocketAddr,
    mut parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<(Response<Full<Bytes>>, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, body.len().into());
    let answer = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    driver.abort();
    // `Connection` is hop-by-hop (RFC 9110, 7.6.1): moto's `close` is about this proxy's
    // connection to it, and passed on it would make the consumer open a connection per request,
    // where SQS keeps them open.
    parts.headers.remove(CONNECTION);
    parts.headers.remove("keep-alive");
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, body.len().into());
    Ok((Response::from_parts(parts, Full::new(body.clone())), body))
}

fn bad_gateway(e: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("proxy: {e}"))));
    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(target: Option<&str>) -> hyper::http::request::Parts {
        let mut b = Request::builder().method("POST").uri("/");
        if let Some(t) = target {
            b = b.header("x-amz-target", t);
        }
        b.body(())
            .map(|r| r.into_parts().0)
            .expect("a valid request")
    }

    #[test]
    fn operations_are_read_from_the_target_or_the_form() {
        assert_eq!(
            operation_of(&parts(Some("AmazonSQS.DeleteMessageBatch")), b"{}"),
            "DeleteMessageBatch"
        );
        assert_eq!(
            operation_of(&parts(None), b"Action=ReceiveMessage&Version=2012-11-05"),
            "ReceiveMessage"
        );
        assert_eq!(operation_of(&parts(None), b""), "?");
    }

    #[test]
    fn received_messages_are_counted_in_either_protocol() {
        assert_eq!(
            messages_in(br#"{"Messages":[{"MessageId":"a"},{"MessageId":"b"}]}"#),
            2
        );
        assert_eq!(messages_in(b"{}"), 0);
        assert_eq!(
            messages_in(
                b"<ReceiveMessageResult><Message><Body>x</Body></Message></ReceiveMessageResult>"
            ),
            1
        );
    }
}
