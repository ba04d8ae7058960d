//! Strings with a fixed syntax: currency codes, template names and email addresses.

use std::borrow::Cow;

use email_address::{EmailAddress, Options};
use schemars::{Schema, json_schema};

use crate::text::{Checked, Rule, check_length};

/// An ISO 4217 currency code: three uppercase ASCII letters, such as `EUR`.
pub type Currency = Checked<CurrencyRule>;
/// An email template name: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`.
pub type TemplateName = Checked<TemplateNameRule>;
/// An email address (`local@domain.tld`, no display name, at most 254 characters; non-ASCII
/// letters allowed, as RFC 6531 does).
pub type Email = Checked<EmailRule>;

/// The rule of [`Currency`].
pub struct CurrencyRule;

impl Rule for CurrencyRule {
    fn name() -> Cow<'static, str> {
        "Currency".into()
    }

    fn check(s: &str) -> Result<(), String> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a currency code (three uppercase letters, such as \"EUR\")"
            ))
        }
    }

    fn schema() -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 4217 currency code",
        })
    }
}

/// ISO 4217 currencies whose minor unit is not a hundredth.
const MINOR_DIGITS: [(&str, u32); 24] = [
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
];

/// Decimal digits of a currency's minor unit (2 for `EUR`, 0 for `JPY`, 3 for `KWD`).
pub fn minor_unit_digits(currency: &str) -> u32 {
    MINOR_DIGITS
        .iter()
        .find(|(code, _)| *code == currency)
        .map_or(2, |(_, digits)| *digits)
}

impl Checked<CurrencyRule> {
    /// Decimal digits of this currency's minor unit (2 for `EUR`, 0 for `JPY`, 3 for `KWD`).
    pub fn minor_unit_digits(&self) -> u32 {
        minor_unit_digits(self)
    }
}

/// The rule of [`TemplateName`].
pub struct TemplateNameRule;

impl Rule for TemplateNameRule {
    fn name() -> Cow<'static, str> {
        "TemplateName".into()
    }

    fn check(s: &str) -> Result<(), String> {
        check_length(s, 1, 64)?;
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if s.bytes().all(ok) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a template name (only a-z, 0-9, _ and -)"
            ))
        }
    }

    fn schema() -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9_-]{1,64}$",
        })
    }
}

/// Longest address SMTP can carry (RFC 5321 path limit minus the angle brackets).
const MAX_EMAIL_CHARS: usize = 254;

/// What an error may say of a value meant as an address: never the address itself (errors are
/// logged and dead-lettered), only its first character and what follows its last `@`.
fn masked(s: &str) -> String {
    let first: String = s.chars().take(1).collect();
    match s.rsplit_once('@') {
        Some((_, domain)) => format!("\"{first}***@{domain}\""),
        None => format!("\"{first}***\""),
    }
}

/// The rule of [`Email`].
pub struct EmailRule;

impl Rule for EmailRule {
    fn name() -> Cow<'static, str> {
        "Email".into()
    }

    fn check(s: &str) -> Result<(), String> {
        check_length(s, 3, MAX_EMAIL_CHARS)?;
        // A bare address with a dotted domain: display names and IP literals are not addresses a
        // mailer should be asked to deliver to.
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        EmailAddress::parse_with_options(s, options)
            .map(|_| ())
            .map_err(|e| format!("{} is not an email address: {}", masked(s), reason(&e)))
    }

    fn schema() -> Schema {
        json_schema!({
            "type": "string",
            "format": "idn-email",
            "pattern": email_pattern(),
            "minLength": 3,
            "maxLength": MAX_EMAIL_CHARS,
        })
    }
}

/// The shape [`EmailRule`] accepts, as a JSON Schema `pattern` (the subset of ECMA 262 regular
/// expressions that validators share: no look-around, `\uXXXX` escapes). `format: email` alone
/// says less: validators accept display names (`Ada <ada@example.com>`), IP literals and
/// dotless domains, which the decoder refuses.
fn email_pattern() -> String {
    // RFC 5322 `atext`: any character but ASCII controls, space and `"(),.:;<>@[\]`.
    let atext = r#"[^\u0000-\u0020"(),.:;<>@\[\\\]\u007F]"#;
    // How a domain label starts and ends: an ASCII letter or digit, or any non-ASCII character
    // (the decoder also wants that one to be a letter or digit).
    let let_dig = r"[^\u0000-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007F]";
    // A quoted local part: printable characters, space and tab, and `\`-escaped pairs.
    let quoted = r#""(?:[^\u0000-\u0008\u000A-\u001F"\\\u007F]|\\[\u0021-\u007E])+""#;
    let local = format!(r"(?:{atext}+(?:\.{atext}+)*|{quoted})");
    let label = format!("{let_dig}(?:{atext}*{let_dig})?");
    format!(r"^{local}@{label}(?:\.{label})+$")
}

/// `email_address` words its errors as sentences ("Invalid character."); Fleet's reasons are
/// lowercase without a trailing period.
fn reason(e: &email_address::Error) -> String {
    let text = e.to_string();
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_uppercase_letters() {
        assert!(Currency::new("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", "ÄUR", ""] {
            assert!(Currency::new(bad).is_err(), "{bad}");
        }
        assert_eq!(Currency::new("JPY").unwrap().minor_unit_digits(), 0);
        assert_eq!(Currency::new("KWD").unwrap().minor_unit_digits(), 3);
        assert_eq!(Currency::new("USD").unwrap().minor_unit_digits(), 2);
    }

    #[test]
    fn template_names_are_lowercase_slugs() {
        assert!(TemplateName::new("order_confirmation-v2").is_ok());
        for bad in ["", "Welcome", "a b", "a.b", &"x".repeat(65)] {
            assert!(TemplateName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_addresses_are_checked() {
        assert!(Email::new("ada@example.com").is_ok());
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "a b@example.com",
            "ada@@example.com",
        ] {
            assert!(Email::new(bad).is_err(), "{bad}");
        }
    }

    /// Errors are logged and dead-lettered: they never repeat the address they refuse.
    #[test]
    fn a_refused_address_is_masked_in_its_error() {
        let err = Email::new("Ada Lovelace <ada.l@example.com>")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("ada.l@") && !err.contains("Lovelace"),
            "{err}"
        );
        assert!(err.contains("\"A***@example.com>\""), "{err}");
        let err = Email::new("a b@example.com").unwrap_err().to_string();
        assert!(
            err.contains("\"a***@example.com\"") && !err.contains("a b@"),
            "{err}"
        );
    }

    /// The schema's pattern alone (what a validator that does not check `format` sees) gives the
    /// decoder's verdict, except where it cannot: byte lengths, and a non-ASCII character that is
    /// not a letter or digit at either end of a domain label.
    #[test]
    fn the_email_pattern_says_what_the_rule_says() {
        let schema = serde_json::json!({"type": "string", "pattern": email_pattern()});
        let pattern = jsonschema::validator_for(&schema).unwrap();
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("ada@{}.com", "b".repeat(64));
        let differ = [long_local.as_str(), long_label.as_str(), "ada@€xample.com"];
        let addresses = [
            "ada@example.com",
            "ada.lovelace+orders@mail.example.co.uk",
            "o'brien@example.ie",
            "user_name@sub_domain.example.com",
            "x@a.b",
            "ådä@exämple.com",
            "\"ada lovelace\"@example.com",
            "\"a\\\"b\"@example.com",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "a b@example.com",
            "ada@@example.com",
            "ada@example.com.",
            ".ada@example.com",
            "ada.@example.com",
            "ada..lovelace@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "\"\"@example.com",
            "ada@exa mple.com",
            "ada\u{7f}@example.com",
        ];
        for address in addresses.iter().chain(&differ) {
            let by_rule = EmailRule::check(address).is_ok();
            let by_pattern = pattern.is_valid(&serde_json::json!(address));
            let expected_agreement = !differ.contains(address);
            assert_eq!(
                by_rule == by_pattern,
                expected_agreement,
                "{address}: rule {by_rule}, pattern {by_pattern}"
            );
        }
    }
}
