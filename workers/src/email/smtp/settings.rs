//! The SMTP mailer's settings (`[email.smtp]` in `fleet.toml`) and the checks that refuse the
//! ones that cannot work or would send in the clear.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SmtpError;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plaintext first, then `STARTTLS`, which the server must offer: nothing (neither the
    /// password nor a message) is sent before the upgrade. Port 587 by default.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). Port 465 by default.
    Implicit,
    /// Plaintext throughout: only to a relay on this host (`localhost`, `127.0.0.1`, `::1`).
    None,
}

/// Where and how the SMTP mailer sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// The server's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The server's port: 587 unless set (465 with `tls = "implicit"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `starttls` (required, the default), `implicit` or `none` (localhost only).
    pub tls: SmtpTls,
    /// The user to authenticate as; with it, `password_parameter` is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The SSM parameter (a `SecureString`) holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_parameter: Option<String>,
    /// A PEM file of extra root certificates to trust (a private CA, a test's self-signed
    /// certificate), on top of the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Connections kept open for reuse, at most.
    pub pool_max: u32,
    /// How long connecting may take (lettre's own timeout, which covers only the connect).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one send may take in all (connect, TLS, AUTH, the message and the server's
    /// reply); past it the send is abandoned as `timeout`, of kind `Unknown` (the server may
    /// have the message): the worker dead-letters it as `delivery_unknown`, never resends it.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// The name given in `EHLO`: this host's name unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_name: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: None,
            tls: SmtpTls::Starttls,
            username: None,
            password_parameter: None,
            ca_file: None,
            pool_max: 4,
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            hello_name: None,
        }
    }
}

/// The hosts plaintext SMTP may go to: nothing leaves the machine.
const LOOPBACK_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "::1", "[::1]"];

impl SmtpSettings {
    /// The port to connect to: the one set, else the usual one for the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls | SmtpTls::None => 587,
        })
    }

    /// Rejects settings that cannot work or would expose mail or the password, naming the
    /// setting (relative to `[email.smtp]`).
    ///
    /// # Errors
    /// [`SmtpError::Invalid`] with the first problem.
    pub fn validate(&self) -> Result<(), SmtpError> {
        let invalid = |setting: &'static str, reason: &str| {
            Err(SmtpError::Invalid {
                setting,
                reason: reason.to_owned(),
            })
        };
        let host = self.host.trim();
        if host.is_empty() {
            return invalid("host", "must be set");
        }
        if self.tls == SmtpTls::None && !LOOPBACK_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
        {
            return invalid(
                "tls",
                "\"none\" (plaintext) is allowed only for localhost, 127.0.0.1 or ::1; use \"starttls\" or \"implicit\"",
            );
        }
        if self.port == Some(0) {
            return invalid("port", "must not be 0");
        }
        match (&self.username, &self.password_parameter) {
            (Some(_), None) => return invalid("password_parameter", "required with username"),
            (None, Some(_)) => return invalid("username", "required with password_parameter"),
            (Some(u), Some(p)) if u.trim().is_empty() || p.trim().is_empty() => {
                return invalid(
                    "username",
                    "username and password_parameter must not be empty",
                );
            }
            _ => {}
        }
        if self.pool_max == 0 {
            return invalid("pool_max", "at least 1");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be more than 0s");
        }
        if self.send_timeout.is_zero() {
            return invalid("send_timeout", "must be more than 0s");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Result<SmtpSettings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn defaults_require_starttls_on_587_with_a_30s_send_timeout() {
        let s = settings("host = \"smtp.example.com\"").expect("parses");
        assert_eq!(s.tls, SmtpTls::Starttls);
        assert_eq!(s.effective_port(), 587);
        assert_eq!(s.send_timeout, Duration::from_secs(30));
        assert!(s.validate().is_ok());
        let implicit = settings("host = \"smtp.example.com\"\ntls = \"implicit\"").expect("parses");
        assert_eq!(implicit.effective_port(), 465);
    }

    #[test]
    fn durations_are_human_and_unknown_keys_are_refused() {
        let s = settings("host = \"h\"\nsend_timeout = \"1500ms\"\nconnect_timeout = \"2s\"")
            .expect("parses");
        assert_eq!(s.send_timeout, Duration::from_millis(1500));
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        let err = settings("host = \"h\"\npassword = \"hunter2\"").expect_err("unknown key");
        assert!(err.to_string().contains("password"), "{err}");
    }

    #[test]
    fn plaintext_is_refused_off_this_host() {
        for host in ["localhost", "127.0.0.1", "::1", "LOCALHOST"] {
            let s = SmtpSettings {
                host: host.to_owned(),
                tls: SmtpTls::None,
                ..SmtpSettings::default()
            };
            assert!(s.validate().is_ok(), "{host}");
        }
        let s = SmtpSettings {
            host: "smtp.example.com".to_owned(),
            tls: SmtpTls::None,
            ..SmtpSettings::default()
        };
        let err = s.validate().expect_err("plaintext to a remote host");
        assert!(err.to_string().starts_with("tls: "), "{err}");
    }

    #[test]
    fn a_username_needs_a_password_parameter_and_the_reverse() {
        let mut s = SmtpSettings {
            host: "h".to_owned(),
            username: Some("u".to_owned()),
            ..SmtpSettings::default()
        };
        let err = s.validate().expect_err("no password");
        assert!(err.to_string().starts_with("password_parameter: "), "{err}");
        s.username = None;
        s.password_parameter = Some("/fleet/smtp".to_owned());
        let err = s.validate().expect_err("no username");
        assert!(err.to_string().starts_with("username: "), "{err}");
        let empty = SmtpSettings::default().validate().expect_err("no host");
        assert!(empty.to_string().starts_with("host: "), "{empty}");
    }
}
