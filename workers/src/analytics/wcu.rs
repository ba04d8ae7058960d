//! Write capacity of the counter store's transactions, computed from the items written, since
//! DynamoDB (and moto) return no `ConsumedCapacity` a test can rely on for `TransactWriteItems`.
//!
//! DynamoDB bills a transactional write 2 WCU per item per started KB of item size, where an
//! item's size is the sum of its attribute names' and values' sizes (a string: its UTF-8
//! bytes; a number: 1 byte plus 1 per two significant digits, up to 21 bytes); an update is
//! billed on the larger of the item before and after.

/// The largest a DynamoDB number's value can be, in bytes (38 significant digits).
pub const MAX_NUMBER_BYTES: usize = 21;
/// A transactional write costs twice a standard one.
pub const TRANSACTIONAL_FACTOR: u64 = 2;
/// One write capacity unit covers up to 1 KB of item.
const KB: usize = 1024;

/// Size of a string attribute: its name and value in UTF-8.
pub fn string_attribute(name: &str, value: &str) -> usize {
    name.len() + value.len()
}

/// Size of a number attribute holding `value`.
pub fn number_attribute(name: &str, value: i64) -> usize {
    let digits = value.unsigned_abs().to_string();
    let significant = digits.trim_end_matches('0').len().max(1);
    name.len() + number_bytes(significant)
}

/// Size of a number attribute whose value may grow to any size (a counter): the maximum.
pub fn any_number_attribute(name: &str) -> usize {
    name.len() + MAX_NUMBER_BYTES
}

fn number_bytes(significant_digits: usize) -> usize {
    (1 + significant_digits.div_ceil(2)).min(MAX_NUMBER_BYTES)
}

/// WCU of writing one item of `size` bytes in a transaction.
pub fn transactional_item_wcu(size: usize) -> u64 {
    TRANSACTIONAL_FACTOR * size.div_ceil(KB).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(string_attribute("PK", "EVENT#abc"), 11);
        assert_eq!(number_attribute("expiration", 1_765_000_000), 10 + 1 + 2);
        assert_eq!(number_attribute("n", 0), 1 + 2);
        assert_eq!(number_attribute("n", -12_345), 1 + 1 + 3);
        assert_eq!(any_number_attribute("value"), 5 + 21);
    }

    #[test]
    fn transactional_items_cost_two_units_per_started_kb() {
        assert_eq!(transactional_item_wcu(0), 2);
        assert_eq!(transactional_item_wcu(80), 2);
        assert_eq!(transactional_item_wcu(1024), 2);
        assert_eq!(transactional_item_wcu(1025), 4);
    }
}
