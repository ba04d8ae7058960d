//! A plain-HTTP/1.1 client for the two local endpoints `fleet` talks to besides AWS: the ECS
//! agent (task protection) and `fleet run`'s own `/healthz` (`fleet healthcheck`). Both are on
//! a link-local or loopback address, so no TLS, no proxy, one request per connection.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// A response: its status and its body as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body (lossily decoded as UTF-8).
    pub body: String,
}

/// Sends `method url` with an optional JSON `body`, within `timeout` for the whole exchange.
///
/// # Errors
/// When the URL is not `http://host[:port]/path`, or the connection, the request or the
/// response fails or takes longer than `timeout`.
pub async fn send(
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> io::Result<Answer> {
    tokio::time::timeout(timeout, exchange(method, url, body))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{method} {url}: no answer within {timeout:?}"),
            )
        })?
}

async fn exchange(method: &str, url: &str, body: Option<&str>) -> io::Result<Answer> {
    let (authority, path) = split_url(url)?;
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    // The connection is driven beside the request; it ends with the response.
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("connection", "close");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    driver.abort();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `http://host:port/a/b` → (`host:port`, `/a/b`).
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: only http:// URLs (a local endpoint) are supported"),
        )
    })?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_authority_and_path() {
        assert_eq!(
            split_url("http://169.254.170.2/api/abc-123/task-protection/v1/state").unwrap(),
            ("169.254.170.2", "/api/abc-123/task-protection/v1/state")
        );
        assert_eq!(
            split_url("http://127.0.0.1:9464").unwrap(),
            ("127.0.0.1:9464", "/")
        );
        assert!(split_url("https://example.com/").is_err());
    }
}
