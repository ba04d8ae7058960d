//! The key strings of the analytics items in the single table. They move to
//! `workers/src/table/keys.rs`, where every key of the table is built, once that lands.
//!
//! A counter key ends with `#<bucket>#<time>`, two parts that never contain `#`, so a name or
//! subject that contains `#` still gives a key no other counter has.

/// Sort key of an event's analytics deduplication item.
pub const ANALYTICS_SK: &str = "ANALYTICS";

/// Partition key of an event's analytics deduplication item: `EVENT#<event id>`.
pub fn analytics_dedup_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// Partition key of a counter: `COUNTER#<counter key>`; its shards are the items under it.
pub fn counter_pk(counter: &str) -> String {
    format!("COUNTER#{counter}")
}

/// Sort key of one shard of a counter: `SHARD#<n>`.
pub fn counter_sk(shard: u32) -> String {
    format!("SHARD#{shard}")
}

/// Counter of events named `name` in one bucket: `event#<name>#<bucket>#<time>`, such as
/// `event#checkout_started#hour#2026-11-28T02`.
pub fn event_counter(name: &str, bucket: &str, time: &str) -> String {
    format!("event#{name}#{bucket}#{time}")
}

/// Counter of a subject's events in one bucket: `subject#<subject>#<bucket>#<time>`.
pub fn subject_counter(subject: &str, bucket: &str, time: &str) -> String {
    format!("subject#{subject}#{bucket}#{time}")
}

/// Order revenue in one currency and bucket, in minor units: `revenue#<currency>#<bucket>#<time>`.
pub fn revenue_counter(currency: &str, bucket: &str, time: &str) -> String {
    format!("revenue#{currency}#{bucket}#{time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_single_table_design() {
        assert_eq!(analytics_dedup_pk("e-1"), "EVENT#e-1");
        assert_eq!(
            counter_pk("event#a#day#2026-11-28"),
            "COUNTER#event#a#day#2026-11-28"
        );
        assert_eq!(counter_sk(3), "SHARD#3");
        assert_eq!(
            event_counter("checkout_started", "minute", "2026-11-28T02:57"),
            "event#checkout_started#minute#2026-11-28T02:57"
        );
        assert_eq!(
            subject_counter("u-1", "day", "2026-11-28"),
            "subject#u-1#day#2026-11-28"
        );
        assert_eq!(
            revenue_counter("EUR", "day", "2026-11-28"),
            "revenue#EUR#day#2026-11-28"
        );
    }
}
