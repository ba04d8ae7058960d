//! What every message type declares about itself.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A message payload type: its name and version on the wire, how to read the version before it,
/// and the rules and routing keys serde cannot express.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static {
    /// The message type on the wire, such as `order.placed`.
    const TYPE: &'static str;
    /// The current version; decoders accept this one and the one before it.
    const VERSION: u32;

    /// Turns a version `VERSION - 1` payload into the current shape.
    ///
    /// # Errors
    /// A lowercase reason naming the field when the old payload cannot be converted.
    fn upgrade_previous(payload: Value) -> Result<Value, String>;

    /// Checks the rules serde cannot express (sums, counts, cross-field rules).
    ///
    /// # Errors
    /// A lowercase reason naming the field that breaks a rule.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Extra message attributes for SNS/SQS filter policies, as (name, value) pairs.
    fn routing_keys(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The versions a consumer of `E` accepts, newest first: `VERSION` and, above 1, `VERSION - 1`.
pub fn supported_versions<E: Event>() -> Vec<u32> {
    match E::VERSION.checked_sub(1) {
        Some(previous) if previous > 0 => vec![E::VERSION, previous],
        _ => vec![E::VERSION],
    }
}
