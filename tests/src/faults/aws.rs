//! An HTTP proxy in front of the emulator that answers a chosen, seeded fraction of chosen AWS
//! operations with real AWS errors ([`AwsError`]) and forwards everything else untouched.
//!
//! Point the SDK at [`AwsErrorProxy::endpoint`] instead of moto's. The operation of a call is
//! read the way the services route it: the `X-Amz-Target` header of the JSON protocols
//! (`AmazonSQS.ReceiveMessage`, `DynamoDB_20120810.TransactWriteItems`), or the `Action` of the
//! query protocol's form body (SNS `Publish`). Rules name operations without the service
//! prefix. The signature is not checked by moto, so forwarding with the proxy's `Host` is fine.

mod errors;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use errors::AwsError;
use errors::Protocol;

use super::Dice;

/// The proxy; it stops when dropped.
#[derive(Debug)]
pub struct AwsErrorProxy {
    endpoint: String,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    seed: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rules: HashMap<String, Rule>,
    /// Per operation: the dice of its rule, so each operation's hits depend only on the seed
    /// and how many calls of that operation came before.
    dice: HashMap<String, Dice>,
    calls: HashMap<String, u64>,
    injected: HashMap<String, u64>,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    fraction: f64,
    error: AwsError,
}

impl AwsErrorProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (an `http://host:port`
    /// endpoint such as moto's), injecting nothing until [`inject`](Self::inject) is called.
    ///
    /// # Errors
    /// When `upstream` is not `http://` and an address, or no port can be bound.
    pub async fn start(upstream: &str, seed: u64) -> std::io::Result<Self> {
        let upstream: SocketAddr = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream,
            seed,
            state: Mutex::default(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        Ok(Self {
            endpoint,
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the SDK.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// From now on, answers `fraction` (0 to 1) of the calls of `operation` (`ReceiveMessage`,
    /// `TransactWriteItems`, `Publish`) with `error`, replacing an earlier rule for it.
    pub fn inject(&self, operation: &str, fraction: f64, error: AwsError) {
        let mut s = self.shared.lock();
        s.rules
            .insert(operation.to_owned(), Rule { fraction, error });
        s.dice
            .entry(operation.to_owned())
            .or_insert_with(|| Dice::new(self.shared.seed, operation));
    }

    /// Stops injecting errors: every call is forwarded.
    pub fn clear(&self) {
        self.shared.lock().rules.clear();
    }

    /// How many calls of `operation` were answered with an injected error.
    pub fn injected(&self, operation: &str) -> u64 {
        self.shared
            .lock()
            .injected
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// How many calls of `operation` reached the proxy (injected or forwarded).
    pub fn calls(&self, operation: &str) -> u64 {
        self.shared
            .lock()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the call and decides whether it gets an error.
    fn decide(&self, operation: &str) -> Option<AwsError> {
        let mut s = self.lock();
        *s.calls.entry(operation.to_owned()).or_default() += 1;
        let rule = *s.rules.get(operation)?;
        let hit = s
            .dice
            .get_mut(operation)
            .is_some_and(|d| d.hits(rule.fraction));
        if hit {
            *s.injected.entry(operation.to_owned()).or_default() += 1;
        }
        hit.then_some(rule.error)
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (too many open files, say) ends no test by itself.
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |r| handle(shared.clone(), r));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = stop.cancelled() => {}
                // A client that hangs up mid-request is not the proxy's concern.
                _ = conn => {}
            }
        });
    }
}

/// The operation and protocol of a call, from its target header or its form body.
fn call_of(request: &hyper::http::request::Parts, body: &[u8]) -> (String, Option<Protocol>) {
    if let Some(target) = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let (service, operation) = target.split_once('.').unwrap_or(("", target));
        let protocol = if service.starts_with("DynamoDB") {
            Protocol::DynamoJson
        } else {
            Protocol::SqsJson
        };
        return (operation.to_owned(), Some(protocol));
    }
    let action = std::str::from_utf8(body).ok().and_then(|form| {
        form.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    });
    match action {
        Some(action) => (action, Some(Protocol::Query)),
        None => (String::new(), None),
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(bad_gateway(&e)),
    };
    let (operation, protocol) = call_of(&parts, &body);
    if let (Some(error), Some(protocol)) = (shared.decide(&operation), protocol) {
        let n = shared.lock().calls.get(&operation).copied().unwrap_or(0);
        let id = format!("fleet-fault-{operation}-{n}");
        return Ok(error.response(protocol, &body, &id));
    }
    Ok(forward(shared.upstream, parts, body)
        .await
        .unwrap_or_else(|e| bad_gateway(&e)))
}

/// Sends the call to the emulator on a fresh connection and returns its whole answer.
async fn forward(
    upstream: SocketAddr,
    mut parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    // The body is sent whole, so its length is known.
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, body.len().into());
    let answer = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    driver.abort();
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, body.len().into());
    Ok(Response::from_parts(parts, Full::new(body)))
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
    fn operations_are_read_as_the_services_route_them() {
        assert_eq!(
            call_of(&parts(Some("AmazonSQS.ReceiveMessage")), b"{}"),
            ("ReceiveMessage".to_owned(), Some(Protocol::SqsJson))
        );
        assert_eq!(
            call_of(&parts(Some("DynamoDB_20120810.TransactWriteItems")), b"{}"),
            ("TransactWriteItems".to_owned(), Some(Protocol::DynamoJson))
        );
        assert_eq!(
            call_of(&parts(None), b"Action=Publish&Version=2010-03-31&Message=x"),
            ("Publish".to_owned(), Some(Protocol::Query))
        );
        assert_eq!(call_of(&parts(None), b""), (String::new(), None));
    }
}
