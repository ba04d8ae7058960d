//! Key strings of the single table. Every item kind has a prefix, so one table holds them all
//! and a `begins_with` on the sort key selects one kind.

use sha2::{Digest, Sha256};

/// Orders by status are spread over this many `GSI2` partition keys per status, so a status
/// every new order has (`placed`) never takes all the index's writes on one partition.
pub const ORDER_STATUS_SHARDS: u32 = 8;

/// `USER#<customer>`: the partition of a customer's orders and their outbox rows.
pub fn customer_pk(customer_id: &str) -> String {
    format!("USER#{customer_id}")
}

/// `ORDER#<order>`: an order under its customer.
pub fn order_sk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

/// The prefix of every order's sort key, for listing a customer's orders.
pub const ORDER_SK_PREFIX: &str = "ORDER#";

/// `PROFILE`: a customer's profile item, under `USER#<customer>`.
pub const PROFILE_SK: &str = "PROFILE";

/// `GSI1PK = ORDER#<order>`: an order by its id alone.
pub fn order_gsi1pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

/// `GSI1SK` of an order.
pub const ORDER_GSI1SK: &str = "ORDER";

/// `GSI2PK = STATUS#<status>#<shard>`: the shard is a stable hash of the order id.
pub fn order_status_gsi2pk(status: &str, order_id: &str) -> String {
    format!(
        "STATUS#{status}#{}",
        shard_of(order_id, ORDER_STATUS_SHARDS)
    )
}

/// Every `GSI2PK` of one status, for a reader that queries all shards.
pub fn order_status_gsi2pks(status: &str) -> Vec<String> {
    (0..ORDER_STATUS_SHARDS)
        .map(|s| format!("STATUS#{status}#{s}"))
        .collect()
}

/// `GSI2SK = <updated at>#<order>`: newest last within a status shard.
pub fn order_status_gsi2sk(updated_at: &str, order_id: &str) -> String {
    format!("{updated_at}#{order_id}")
}

/// `ORDER#<order>`: the partition of an order id's guard item, which makes the id unique across
/// customers (the order itself lives under its customer).
pub fn order_guard_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

/// The sort key of an order id's guard item.
pub const ORDER_GUARD_SK: &str = "ORDER";

/// `OUTBOX#<order>#<event id>`: an outgoing event not yet published, under its customer.
pub fn outbox_sk(order_id: &str, event_id: &str) -> String {
    format!("OUTBOX#{order_id}#{event_id}")
}

/// The prefix of one order's outbox rows.
pub fn outbox_sk_prefix(order_id: &str) -> String {
    format!("OUTBOX#{order_id}#")
}

/// `IDEMPOTENCY#<key>`: an idempotency record in composite-key mode.
pub fn idempotency_pk(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

/// The sort key of every idempotency record.
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";

/// `EVENT#<event id>`: the analytics worker's deduplication item of one event.
pub fn analytics_event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// The sort key of the analytics deduplication items.
pub const ANALYTICS_SK: &str = "ANALYTICS";

/// `COUNTER#<counter>`: one counter; its value is the sum of its shards.
pub fn counter_pk(counter: &str) -> String {
    format!("COUNTER#{counter}")
}

/// `SHARD#<n>`: one shard of a counter.
pub fn counter_sk(shard: u32) -> String {
    format!("SHARD#{shard}")
}

/// Counter of events named `name` in one bucket: `event#<name>#<bucket>#<time>`, such as
/// `event#checkout_started#hour#2026-11-28T02`. A counter key ends with `#<bucket>#<time>`,
/// two parts without `#`, so a name or subject containing `#` still gives a key of its own.
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

/// A stable shard in `0..shards` for a key (the first 4 bytes of its SHA-256): the same on every
/// process and version, unlike `std`'s hasher.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    first % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("o-1", 8), shard_of("o-1", 8));
        assert!((0..1000).all(|i| shard_of(&format!("o-{i}"), 8) < 8));
        let used: std::collections::BTreeSet<u32> =
            (0..1000).map(|i| shard_of(&format!("o-{i}"), 8)).collect();
        assert_eq!(used.len(), 8, "1,000 orders use every shard");
        assert_eq!(shard_of("x", 0), 0);
    }

    #[test]
    fn keys_read_as_the_topology_documents_them() {
        assert_eq!(customer_pk("c-1"), "USER#c-1");
        assert_eq!(order_sk("o-1"), "ORDER#o-1");
        assert!(order_sk("o-1").starts_with(ORDER_SK_PREFIX));
        assert_eq!(order_gsi1pk("o-1"), "ORDER#o-1");
        let pk = order_status_gsi2pk("placed", "o-1");
        assert!(order_status_gsi2pks("placed").contains(&pk), "{pk}");
        assert_eq!(outbox_sk("o-1", "e-1"), "OUTBOX#o-1#e-1");
        assert!(outbox_sk("o-1", "e-1").starts_with(&outbox_sk_prefix("o-1")));
        assert_eq!(idempotency_pk("k"), "IDEMPOTENCY#k");
        assert_eq!(analytics_event_pk("e"), "EVENT#e");
        assert_eq!(
            counter_pk("event#x#day#2026-11-28"),
            "COUNTER#event#x#day#2026-11-28"
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
