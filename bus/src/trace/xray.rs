//! The X-Ray trace header (`AWSTraceHeader` on SQS, `X-Amzn-Trace-Id` on requests): the same
//! trace id as W3C's, written `1-<first 8 hex>-<last 24 hex>`.

use super::{SpanId, TraceContext, TraceId};

/// Reads `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1|?>`, keys in any order.
pub(super) fn parse(header: &str) -> Option<TraceContext> {
    let (mut root, mut parent, mut sampled) = (None, None, true);
    for part in header.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        match key.trim() {
            "Root" => root = Some(parse_root(value.trim())?),
            "Parent" => parent = Some(SpanId::from_hex(value.trim())?),
            "Sampled" => sampled = value.trim() != "0",
            _ => {}
        }
    }
    Some(TraceContext {
        trace_id: root?,
        span_id: parent?,
        sampled,
    })
}

/// `1-<8 hex>-<24 hex>` (version 1 is the only one X-Ray defines).
fn parse_root(root: &str) -> Option<TraceId> {
    let rest = root.strip_prefix("1-")?;
    let (time, random) = rest.split_once('-')?;
    if time.len() != 8 || random.len() != 24 {
        return None;
    }
    let mut hex = String::with_capacity(32);
    hex.push_str(time);
    hex.push_str(random);
    TraceId::from_hex(&hex)
}

pub(super) fn format(context: &TraceContext) -> String {
    let hex = context.trace_id.to_string();
    format!(
        "Root=1-{}-{};Parent={};Sampled={}",
        &hex[..8],
        &hex[8..],
        context.span_id,
        u8::from(context.sampled)
    )
}
