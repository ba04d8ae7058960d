//! Idempotency records, claims and what a claim answers, with the one rule deciding whether a
//! claim takes a record: every store applies it (the DynamoDB store as a condition expression).

use std::fmt;

/// The value of `status` while a holder runs the work.
pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
/// The value of `status` once the work is done.
pub const STATUS_COMPLETED: &str = "COMPLETED";

/// Where a record's work stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A holder is running the work until `in_progress_expiration`.
    InProgress,
    /// The work is done; `data` holds its result, if any.
    Completed,
}

impl Status {
    /// The Powertools spelling: `INPROGRESS` or `COMPLETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => STATUS_IN_PROGRESS,
            Status::Completed => STATUS_COMPLETED,
        }
    }

    /// Parses the Powertools spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            STATUS_IN_PROGRESS => Some(Status::InProgress),
            STATUS_COMPLETED => Some(Status::Completed),
            _ => None,
        }
    }
}

/// Names one claim of a record, so that only that claim may complete, release or renew it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HolderToken(String);

impl HolderToken {
    /// A fresh random token.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A token as a store recorded it.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for HolderToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HolderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderToken({})", self.0)
    }
}

/// One stored record, with the Powertools attributes and the holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The idempotency key.
    pub id: String,
    /// When the record expires, in epoch **seconds** (the table's TTL attribute).
    pub expiration: u64,
    /// When the holder's lease on an in-progress record ends, in epoch **milliseconds**.
    pub in_progress_expiration: u64,
    /// `INPROGRESS` or `COMPLETED`.
    pub status: Status,
    /// The stored result of completed work, if any.
    pub data: Option<String>,
    /// The payload hash ([`payload_hash`](super::payload_hash)).
    pub validation: String,
    /// The claim that holds (or completed) it.
    pub holder: HolderToken,
}

/// A record held by one claim: what completing or releasing it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The idempotency key.
    pub key: String,
    /// The claim's token.
    pub holder: HolderToken,
}

/// An attempt to take a key for some work, or, by the same holder, to renew its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The idempotency key.
    pub key: String,
    /// The payload hash; a record of the key with another hash is a reused key.
    pub validation: String,
    /// The claim's token.
    pub holder: HolderToken,
    /// The caller's clock, epoch milliseconds: expirations are judged against it.
    pub now_ms: u64,
    /// When the lease on the work ends, epoch milliseconds (the message's visibility deadline).
    pub in_progress_until_ms: u64,
    /// When the record expires, epoch seconds.
    pub expiration: u64,
    /// Whether the claim takes over an in-progress record whose holder's lease has ended (the
    /// layer's rule: the holder died, run the work again). Work that must never run twice
    /// without knowing whether the first run took effect (an email handed to a provider) claims
    /// without takeover, and finds such a record [`Claimed::InProgress`] with its `until_ms` in
    /// the past.
    pub takeover: bool,
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The claim holds the record (new, taken over, or renewed by its holder): run the work.
    Acquired,
    /// The work is done already: a hit, with its stored result.
    Completed {
        /// The stored result, if any.
        data: Option<String>,
    },
    /// Another holder runs the work until `until_ms` (epoch milliseconds).
    InProgress {
        /// When that holder's lease ends.
        until_ms: u64,
    },
    /// The key is taken by a different payload.
    KeyReused,
}

impl Claim {
    /// The record this claim writes when it acquires.
    pub fn record(&self) -> IdempotencyRecord {
        IdempotencyRecord {
            id: self.key.clone(),
            expiration: self.expiration,
            in_progress_expiration: self.in_progress_until_ms,
            status: Status::InProgress,
            data: None,
            validation: self.validation.clone(),
            holder: self.holder.clone(),
        }
    }

    /// The record as this claim holds it.
    pub fn held(&self) -> Held {
        Held {
            key: self.key.clone(),
            holder: self.holder.clone(),
        }
    }

    /// `now_ms` in epoch seconds, for comparing with `expiration`.
    pub fn now_secs(&self) -> u64 {
        self.now_ms / 1000
    }

    /// Whether the claim takes the record: there is none, it has expired, or it is in progress
    /// for the same payload and either this claim holds it or its lease has ended and the claim
    /// takes over.
    pub fn admits(&self, existing: Option<&IdempotencyRecord>) -> bool {
        let Some(r) = existing else {
            return true;
        };
        r.expiration < self.now_secs()
            || (r.validation == self.validation
                && r.status == Status::InProgress
                && ((self.takeover && r.in_progress_expiration < self.now_ms)
                    || r.holder == self.holder))
    }

    /// What a claim that `existing` refused answers. The payload is checked first, on every
    /// path.
    pub fn refused_by(&self, existing: &IdempotencyRecord) -> Claimed {
        if existing.validation != self.validation {
            Claimed::KeyReused
        } else if existing.status == Status::Completed {
            Claimed::Completed {
                data: existing.data.clone(),
            }
        } else {
            Claimed::InProgress {
                until_ms: existing.in_progress_expiration,
            }
        }
    }

    /// What this claim answers against what is stored.
    pub fn against(&self, existing: Option<&IdempotencyRecord>) -> Claimed {
        match existing {
            Some(r) if !self.admits(Some(r)) => self.refused_by(r),
            _ => Claimed::Acquired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(validation: &str, now_ms: u64) -> Claim {
        Claim {
            key: "k".into(),
            validation: validation.into(),
            holder: HolderToken::new(),
            now_ms,
            in_progress_until_ms: now_ms + 30_000,
            expiration: now_ms / 1000 + 3600,
            takeover: true,
        }
    }

    #[test]
    fn without_takeover_a_stale_record_stays_in_progress_but_its_holder_renews() {
        let first = claim("h", 1_000_000);
        let r = first.record();
        let late = Claim {
            takeover: false,
            ..claim("h", 1_030_001)
        };
        assert_eq!(
            late.against(Some(&r)),
            Claimed::InProgress {
                until_ms: 1_030_000
            }
        );
        let renewal = Claim {
            takeover: false,
            now_ms: 1_030_001,
            ..first.clone()
        };
        assert_eq!(renewal.against(Some(&r)), Claimed::Acquired);
        let expired = Claim {
            takeover: false,
            ..claim("h", (first.expiration + 1) * 1000)
        };
        assert_eq!(expired.against(Some(&r)), Claimed::Acquired);
    }

    #[test]
    fn a_record_is_taken_over_only_when_free_expired_or_its_lease_ended() {
        let first = claim("h", 1_000_000);
        let r = first.record();
        assert_eq!(first.against(None), Claimed::Acquired);
        let second = claim("h", 1_000_000);
        assert_eq!(
            second.against(Some(&r)),
            Claimed::InProgress {
                until_ms: 1_030_000
            }
        );
        let renewal = Claim {
            in_progress_until_ms: 1_060_000,
            ..first.clone()
        };
        assert_eq!(renewal.against(Some(&r)), Claimed::Acquired);
        assert_eq!(claim("h", 1_030_001).against(Some(&r)), Claimed::Acquired);
        assert_eq!(claim("x", 1_030_001).against(Some(&r)), Claimed::KeyReused);
        let expired = claim("x", (first.expiration + 1) * 1000);
        assert_eq!(expired.against(Some(&r)), Claimed::Acquired);
    }

    #[test]
    fn a_completed_record_answers_its_data_or_a_reused_key() {
        let mut r = claim("h", 1_000_000).record();
        r.status = Status::Completed;
        r.data = Some("42".into());
        let late = claim("h", 2_000_000);
        assert_eq!(
            late.against(Some(&r)),
            Claimed::Completed {
                data: Some("42".into())
            }
        );
        assert_eq!(claim("x", 2_000_000).against(Some(&r)), Claimed::KeyReused);
        assert_eq!(Status::parse("COMPLETED"), Some(Status::Completed));
        assert_eq!(
            Status::parse(Status::InProgress.as_str()),
            Some(Status::InProgress)
        );
        assert_eq!(Status::parse("DONE"), None);
    }
}
