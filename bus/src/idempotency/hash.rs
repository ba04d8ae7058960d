//! The payload hash: SHA-256 of canonical JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The SHA-256 (lowercase hex) of the payload's canonical JSON: object keys sorted by their
/// bytes, no whitespace, strings and numbers as `serde_json` prints them. Two payloads that
/// differ only in key order or formatting hash the same.
pub fn payload_hash(payload: &Value) -> String {
    let mut text = String::new();
    canonical(payload, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Writes `v` as canonical JSON.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here, whatever order the map keeps (serde_json's `preserve_order`).
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        let mut s = String::new();
        canonical(v, &mut s);
        s
    }

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_dropped() {
        let a: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "é\n"}], "a": 1.5, "c": true }"#)
                .unwrap();
        assert_eq!(
            text(&a),
            r#"{"a":1.5,"b":[1,{"a":"é\n","z":null}],"c":true}"#
        );
        let b = json!({"c": true, "a": 1.5, "b": [1, {"a": "é\n", "z": null}]});
        assert_eq!(payload_hash(&a), payload_hash(&b));
    }

    #[test]
    fn the_hash_is_sha256_hex_and_tells_payloads_apart() {
        // sha256("{}")
        assert_eq!(
            payload_hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(
            payload_hash(&json!({"a": 1})),
            payload_hash(&json!({"a": 2}))
        );
        assert_ne!(payload_hash(&json!([1, 2])), payload_hash(&json!([2, 1])));
        assert_ne!(
            payload_hash(&json!({"a": "1"})),
            payload_hash(&json!({"a": 1}))
        );
    }
}
