//! One small HTTP/1 server (hyper's own) for `/metrics`, `/healthz` and `/readyz`. Every
//! request gets an answer computed from in-memory state only: no endpoint calls AWS, so a probe
//! answers in microseconds however busy the handlers are.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::ObserveError;
use super::probes::Probes;

/// A client that has not sent its request head within this long is dropped (a slow or idle
/// connection must not hold a task forever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (out of file descriptors), wait this long before the next one instead
/// of spinning.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The Prometheus text exposition format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

/// What the endpoints answer from.
#[derive(Clone)]
pub struct Endpoints {
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Answers `/healthz` and `/readyz`.
    pub probes: Probes,
}

/// Binds the server's address (port 0 takes a free port; the listener says which).
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ObserveError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ObserveError::Bind { address, source })
}

/// Serves `listener` until the task is aborted; one task per connection.
pub async fn serve(listener: TcpListener, endpoints: Endpoints) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "observability endpoints: accept failed");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = respond(&endpoints, &request);
                async move { Ok::<_, Infallible>(answer) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "observability endpoints: connection ended with an error");
            }
        });
    }
}

/// The answer to one request.
fn respond(endpoints: &Endpoints, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    // hyper sends no body in answer to HEAD, with the Content-Length of GET's.
    match request.uri().path() {
        "/metrics" => {
            endpoints.probes.update_ready_gauges();
            let mut r = text(StatusCode::OK, endpoints.metrics.render());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_TYPE));
            r
        }
        "/healthz" => verdict(endpoints.probes.liveness()),
        "/readyz" => verdict(endpoints.probes.readiness()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n".into(),
        ),
    }
}

fn verdict(v: super::health::Verdict) -> Response<Full<Bytes>> {
    let status = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, v.body)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_TYPE));
    r
}
