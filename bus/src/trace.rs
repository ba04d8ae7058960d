//! Trace context: which trace a message belongs to, carried from producer to consumer.
//!
//! A [`TraceContext`] is a W3C trace context (a 128-bit trace id, the 64-bit id of the span that
//! caused what comes next, and the sampled flag). It travels:
//! - in the `traceparent` message attribute ([`TRACEPARENT`]), W3C version `00`;
//! - or, for an SQS message that already has the 10 attributes SQS allows, in the
//!   `AWSTraceHeader` system attribute (X-Ray format, see [`TraceContext::to_xray`]), which
//!   counts against no limit;
//! - inside a handler, in a task-local ([`current`], set by the consumer engine), so that every
//!   send or publish the handler makes carries the handler's context without the handler doing
//!   anything.
//!
//! Every send and publish of the bus stamps its messages (`inject`); the consumer engine reads
//! each received message's context (`extract`) and runs its handler in a `process` span that is
//! a child of it. Tracing never fails or reshapes a send: when the attribute does not fit (no
//! attribute slot left, or the size limit would be passed), the message goes without it.

mod extract;
mod inject;
mod xray;

use std::fmt;
use std::future::Future;
use std::num::{NonZeroU64, NonZeroU128};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use extract::MessageTrace;
pub(crate) use inject::{Stamp, stamp};

/// The message attribute that carries the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace id: 16 bytes, never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(NonZeroU128);

/// A W3C span id: 8 bytes, never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(NonZeroU64);

impl TraceId {
    /// The id from its 32 lowercase hex digits; `None` if malformed or all zero.
    pub fn from_hex(hex: &str) -> Option<Self> {
        parse_hex::<32>(hex).and_then(NonZeroU128::new).map(Self)
    }

    /// The id as a number (big-endian reading of its 16 bytes).
    pub fn to_u128(self) -> u128 {
        self.0.get()
    }

    /// The id's 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }

    /// A new random id whose first 4 bytes are the current Unix time in seconds: a valid W3C id
    /// that X-Ray also accepts (X-Ray trace ids start with the time).
    pub fn random() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // The time keeps the id non-zero; the random low 96 bits make it unique.
        let high = u128::from(secs as u32) << 96;
        let low = rand::random::<u128>() & ((1u128 << 96) - 1);
        Self(NonZeroU128::new(high | low).unwrap_or(NonZeroU128::MIN))
    }
}

impl SpanId {
    /// The id from its 16 lowercase hex digits; `None` if malformed or all zero.
    pub fn from_hex(hex: &str) -> Option<Self> {
        parse_hex::<16>(hex)
            .and_then(|v| u64::try_from(v).ok())
            .and_then(NonZeroU64::new)
            .map(Self)
    }

    /// The id as a number (big-endian reading of its 8 bytes).
    pub fn to_u64(self) -> u64 {
        self.0.get()
    }

    /// The id's 8 bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }

    /// A new random id.
    pub fn random() -> Self {
        loop {
            if let Some(id) = NonZeroU64::new(rand::random()) {
                return Self(id);
            }
        }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A W3C trace context: the trace, the span that is the parent of what follows, and whether the
/// trace is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace.
    pub trace_id: TraceId,
    /// The span this context names (the parent of spans started from it).
    pub span_id: SpanId,
    /// The W3C `sampled` flag.
    pub sampled: bool,
}

impl TraceContext {
    /// The start of a new trace: a new trace id and span id, sampled.
    pub fn root() -> Self {
        Self {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            sampled: true,
        }
    }

    /// A new span of the same trace (a new random span id, the same flags), for work caused by
    /// this context.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: SpanId::random(),
            ..*self
        }
    }

    /// Reads a `traceparent` header: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
    ///
    /// Version `00` must be exactly that; a higher version is read by its first four fields as
    /// the W3C recommendation says (what follows is for that version to define); version `ff`,
    /// upper-case hex, and all-zero ids are refused (`None`).
    pub fn from_traceparent(text: &str) -> Option<Self> {
        let text = text.trim_matches([' ', '\t']);
        let bytes = text.as_bytes();
        // Checked as ASCII first, so the slices below fall on character boundaries.
        if bytes.len() < 55 || !bytes[..55].is_ascii() {
            return None;
        }
        let version = parse_hex::<2>(&text[..2])?;
        let exact = bytes.len() == 55;
        let valid_length = match version {
            0xff => false,
            0 => exact,
            _ => exact || bytes[55] == b'-',
        };
        if !valid_length || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let flags = parse_hex::<2>(&text[53..55])?;
        Some(Self {
            trace_id: TraceId::from_hex(&text[3..35])?,
            span_id: SpanId::from_hex(&text[36..52])?,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header for this context (version `00`).
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// The 55 ASCII bytes of the `traceparent` form, written without the formatting machinery:
    /// every message sent is stamped with one.
    fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = [0u8; 55];
        out[..3].copy_from_slice(b"00-");
        // The slices are exactly twice the bytes encoded: neither call can fail.
        let _ = hex::encode_to_slice(self.trace_id.to_bytes(), &mut out[3..35]);
        out[35] = b'-';
        let _ = hex::encode_to_slice(self.span_id.to_bytes(), &mut out[36..52]);
        out[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        out
    }

    /// Reads an X-Ray trace header (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`, as
    /// in SQS's `AWSTraceHeader`). Keys may come in any order; other keys (`Lineage`, ...) are
    /// ignored. `None` without a valid `Root` and `Parent` (a header with only a root names no
    /// span to be the child of). `Sampled=?` or none counts as sampled.
    pub fn from_xray(header: &str) -> Option<Self> {
        xray::parse(header)
    }

    /// The X-Ray trace header for this context: the trace id split as X-Ray writes it.
    pub fn to_xray(&self) -> String {
        xray::format(self)
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.traceparent_bytes()))
    }
}

/// Exactly `N` lowercase hex digits (W3C forbids upper case) as a number.
fn parse_hex<const N: usize>(text: &str) -> Option<u128> {
    if text.len() != N {
        return None;
    }
    // N is at most 32: the digits fit a u128 and the shifts never overflow.
    text.bytes().try_fold(0u128, |value, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(digit))
    })
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the handler this task runs, if any: the context of its `process` span.
/// Sends and publishes made in it carry this context. A task the handler spawns does not inherit
/// it (a task-local belongs to its task): wrap that task's future in [`scope`] to keep it.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `future` with `context` as the [`current`] trace context.
pub fn scope<F: Future>(context: TraceContext, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(context, future)
}

#[cfg(test)]
mod tests;
