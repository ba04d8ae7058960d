//! No full email address in a log line, a metric label, a dead-letter reason or an error text:
//! addresses are shown masked, `a***@example.com` (the first character of the local part, then
//! the domain, which is what an operator needs to see which provider or domain fails).

use std::borrow::Cow;

/// `alice@example.com` → `a***@example.com`; text without an `@` → `***`.
pub fn mask_address(address: &str) -> String {
    let address = address.trim();
    // `Name <local@domain>`: keep neither the name (often the person's) nor the local part.
    let inner = match (address.rfind('<'), address.rfind('>')) {
        (Some(l), Some(r)) if l < r => &address[l + 1..r],
        _ => address,
    };
    match inner.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Masks every address-like token in `text` (a run of non-separator characters around an `@`),
/// as providers echo recipients in their replies (`550 5.1.1 <bob@example.com>: unknown user`).
pub fn redact_addresses(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let is_separator = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | ':' | '='
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start = rest[..at].rfind(is_separator).map_or(0, |i| {
            i + rest[i..].chars().next().map_or(1, char::len_utf8)
        });
        let end = rest[at..].find(is_separator).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        let local = &rest[start..at];
        if local.is_empty() {
            out.push_str(token);
        } else {
            out.push_str(&mask_address(token));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether `text` holds an address that is not masked: what the log scans in the tests look for.
pub fn has_full_address(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let local = rest[..at]
            .chars()
            .rev()
            .take_while(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '*')
            })
            .collect::<String>();
        let domain_ok = rest[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .filter(|c| *c == '.')
            .count()
            >= 1;
        // A masked local part is one character then `***` (reversed here: `***x`).
        let masked = local.starts_with("***");
        if !local.is_empty() && domain_ok && !masked {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_its_first_character_and_domain() {
        assert_eq!(mask_address("alice@example.com"), "a***@example.com");
        assert_eq!(
            mask_address("Alice Smith <alice@example.com>"),
            "a***@example.com"
        );
        assert_eq!(mask_address("no-at-sign"), "***");
        assert_eq!(mask_address("@example.com"), "***@example.com");
    }

    #[test]
    fn replies_echoing_recipients_are_redacted() {
        let t = "550 5.1.1 <bob.jones+x@mail.example.org>: Recipient address rejected";
        let r = redact_addresses(t);
        assert_eq!(
            r,
            "550 5.1.1 <b***@mail.example.org>: Recipient address rejected"
        );
        assert!(has_full_address(t));
        assert!(!has_full_address(&r));
        assert_eq!(
            redact_addresses("to=alice@example.com, cc=carol@x.io"),
            "to=a***@example.com, cc=c***@x.io"
        );
        assert!(matches!(redact_addresses("no address"), Cow::Borrowed(_)));
        assert_eq!(
            redact_addresses("ünï@exämple.com said"),
            "ü***@exämple.com said"
        );
    }

    #[test]
    fn masked_addresses_and_at_signs_without_addresses_pass_the_scan() {
        assert!(!has_full_address("sent to a***@example.com"));
        assert!(!has_full_address("price @ 5 EUR, handle @fleet"));
        assert!(has_full_address(r#"{"to":"x@example.com"}"#));
    }
}
