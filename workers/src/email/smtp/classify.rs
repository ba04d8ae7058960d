//! Every way an SMTP send fails, as a [`SendError`] (or as "authentication refused", which the
//! mailer answers with one password refresh).

use std::error::Error as _;

use lettre::transport::smtp::Error as SmtpFailure;

use crate::email::mailer::SendError;

/// Replies that mean the credentials were refused or are missing: 530 (authentication
/// required), 534 (mechanism too weak), 535 (credentials invalid). They come before `MAIL FROM`,
/// so nothing was sent.
const AUTH_REFUSED: [u16; 3] = [530, 534, 535];

/// What a failed attempt means to the mailer.
#[derive(Debug)]
pub enum Failure {
    /// The server refused the credentials: refresh the password and try once more.
    AuthRefused {
        /// The server's reply, addresses masked.
        detail: String,
    },
    /// Anything else, classified.
    Send(SendError),
}

/// The class of `err`, with the server's text (masked by [`SendError`]'s constructors).
pub fn classify(err: &SmtpFailure) -> Failure {
    if let Some(code) = err.status() {
        let code = u16::from(code);
        // The server's own words, without lettre's "permanent error (550): " prefix.
        let text = err
            .source()
            .map_or_else(|| err.to_string(), ToString::to_string);
        let detail = format!("{code} {text}");
        if AUTH_REFUSED.contains(&code) {
            return Failure::AuthRefused {
                detail: SendError::paused("smtp_auth", detail).detail,
            };
        }
        let code_name = format!("smtp_{code}");
        return Failure::Send(if err.is_permanent() {
            SendError::rejected(code_name, detail)
        } else {
            SendError::transient(code_name, detail)
        });
    }
    let detail = err.to_string();
    let code = if err.is_tls() || caused_by_tls(err) {
        "smtp_tls"
    } else if err.is_timeout() {
        // lettre's connect timeout: nothing was sent.
        "connect_timeout"
    } else if err.is_client() {
        // lettre refused before talking (no common AUTH mechanism, no STARTTLS offered).
        "smtp_client"
    } else {
        // Network and I/O errors, a reply cut short (the server closed the connection mid
        // DATA: lettre reads an incomplete response), a reply that does not parse.
        "smtp_network"
    };
    Failure::Send(SendError::transient(code, detail))
}

/// Whether a rustls error is in `err`'s causes: lettre reports a failed handshake (an untrusted
/// certificate, a wrong name) as a connection error, with tokio-rustls's I/O error inside.
fn caused_by_tls(err: &SmtpFailure) -> bool {
    let mut next = err.source();
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = e.source();
    }
    false
}
