//! Timestamps on the wire: RFC 3339, strictly (chrono's own parser also takes looser forms).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Parses an RFC 3339 timestamp (`2026-11-26T15:00:00Z`, `2026-11-26T16:00:00.5+01:00`).
pub(crate) fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))
}

/// `deserialize_with` for RFC 3339 fields.
pub(crate) fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_rfc3339(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_required() {
        assert!(parse_rfc3339("2026-11-26T15:00:00Z").is_ok());
        assert_eq!(
            parse_rfc3339("2026-11-26T16:00:00.5+01:00").unwrap(),
            parse_rfc3339("2026-11-26T15:00:00.5Z").unwrap()
        );
        for bad in [
            "2026-11-26",
            "2026-11-26T15:00:00",
            "yesterday",
            "",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
