//! A minimal HTTP/1.0 client for tests: the observability endpoints of `fleet run`, Prometheus's
//! API and moto's REST APIs answer it, and the tests need nothing more than a status and a body.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// `GET path` on `address`, within `limit`.
///
/// # Errors
/// When the server cannot be reached, does not answer within `limit`, or the answer is not HTTP.
pub async fn get_within(
    address: SocketAddr,
    path: &str,
    limit: Duration,
) -> std::io::Result<Answer> {
    tokio::time::timeout(limit, get(address, path))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("GET {path} took over {limit:?}"),
            )
        })?
}

/// `GET path` on `address` (HTTP/1.0: the server closes the connection after its answer).
///
/// # Errors
/// When the server cannot be reached or the answer is not HTTP.
pub async fn get(address: SocketAddr, path: &str) -> std::io::Result<Answer> {
    request(address, "GET", path, &[], &[]).await
}

/// `method path` on `address` with `headers` and `body` (HTTP/1.0, as [`get`]).
///
/// # Errors
/// When the server cannot be reached or the answer is not HTTP.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let invalid = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {text:.200}"),
        )
    };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// `s` percent-encoded for a query string.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
