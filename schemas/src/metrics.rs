//! The schemas crate's metric catalogue: what a [`Router`](crate::Router) counts when it does
//! not hand a message to a handler. The shape of each entry is
//! [`fleet_bus::metrics::MetricDoc`]; [`describe`] registers the help texts.

use fleet_bus::metrics::{MetricDoc, MetricKind, describe_all, label};
use metrics::Unit;

/// Messages a router refused to hand to a handler, by `queue` and `error_type` (the
/// [`SchemaError`](crate::SchemaError)'s label: `invalid_json`, `unknown_type`, ...).
pub const DECODE_FAILURES: &str = "fleet_decode_failures_total";
/// Messages of a type without a handler that were acknowledged unhandled
/// ([`Unknown::Ack`](crate::Unknown::Ack)), by `queue` and `outcome`: a Fleet type by name,
/// any other as `other`, so a producer cannot grow the number of series.
pub const SKIPPED: &str = "fleet_messages_skipped_total";

/// The `outcome` of [`SKIPPED`] for a type that is not one of Fleet's.
pub const OTHER_TYPE: &str = "other";

/// Every metric of the schemas crate.
pub const CATALOGUE: &[MetricDoc] = &[
    MetricDoc {
        name: DECODE_FAILURES,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::QUEUE, label::ERROR_TYPE],
        help: "Messages a router refused to hand to a handler (dead-lettered), by the decode error's label.",
    },
    MetricDoc {
        name: SKIPPED,
        kind: MetricKind::Counter,
        unit: Unit::Count,
        labels: &[label::QUEUE, label::OUTCOME],
        help: "Messages of a type without a handler, acknowledged unhandled; outcome is the Fleet type or other.",
    },
];

/// Registers the descriptions of the schemas crate's metrics ([`CATALOGUE`]).
pub fn describe() {
    describe_all(CATALOGUE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_keeps_the_naming_rules() {
        let problems: Vec<String> = CATALOGUE.iter().flat_map(MetricDoc::problems).collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
