//! DynamoDB tables as the topology declares them: keys, global secondary indexes, the TTL
//! attribute and the billing mode. Plain data: applying them to AWS is `aws::table` (feature
//! `dynamodb`); the embedded transport's stores need no table.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// DynamoDB allows table names of 3 to 255 characters.
const TABLE_NAME_LEN: std::ops::RangeInclusive<usize> = 3..=255;
/// DynamoDB allows at most 20 global secondary indexes per table.
const MAX_GLOBAL_INDEXES: usize = 20;

/// One table. Every key attribute is a string (`S`), as single-table designs build them
/// (`USER#<id>`, `ORDER#<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    /// The table's name.
    pub name: String,
    /// The partition (hash) key attribute.
    pub partition_key: String,
    /// The sort (range) key attribute, if any.
    #[serde(default)]
    pub sort_key: Option<String>,
    /// On-demand or provisioned capacity.
    #[serde(default)]
    pub billing: Billing,
    /// The attribute holding an item's expiry in epoch seconds; DynamoDB deletes expired items
    /// (within about two days; readers must still check it).
    #[serde(default)]
    pub ttl_attribute: Option<String>,
    /// Global secondary indexes.
    #[serde(default, rename = "index")]
    pub indexes: Vec<IndexDecl>,
}

/// A table's capacity mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", deny_unknown_fields)]
pub enum Billing {
    /// Pay per request (on-demand): no capacity to plan.
    #[default]
    PayPerRequest,
    /// Provisioned read and write capacity units (for the table and each index).
    Provisioned {
        /// Read capacity units.
        read: u32,
        /// Write capacity units.
        write: u32,
    },
}

/// A global secondary index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDecl {
    /// The index's name.
    pub name: String,
    /// Its partition key attribute.
    pub partition_key: String,
    /// Its sort key attribute, if any.
    #[serde(default)]
    pub sort_key: Option<String>,
    /// Which attributes the index holds.
    #[serde(default)]
    pub projection: Projection,
}

/// What a global secondary index projects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// Every attribute.
    #[default]
    All,
    /// The table's and the index's keys only.
    KeysOnly,
}

impl TableDecl {
    /// Every key attribute of the table and its indexes, each once, sorted.
    pub fn key_attributes(&self) -> BTreeSet<&str> {
        let mut keys = BTreeSet::from([self.partition_key.as_str()]);
        keys.extend(self.sort_key.as_deref());
        for i in &self.indexes {
            keys.insert(&i.partition_key);
            keys.extend(i.sort_key.as_deref());
        }
        keys
    }

    /// The index with this name.
    pub fn index(&self, name: &str) -> Option<&IndexDecl> {
        self.indexes.iter().find(|i| i.name == name)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            TABLE_NAME_LEN.contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !name_ok(&self.name) {
            return Err(format!(
                "table {:?}: a name is 3 to 255 of A-Z a-z 0-9 _ - .",
                self.name
            ));
        }
        if self.indexes.len() > MAX_GLOBAL_INDEXES {
            return Err(format!(
                "table {}: {} indexes, DynamoDB allows at most {MAX_GLOBAL_INDEXES}",
                self.name,
                self.indexes.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for i in &self.indexes {
            if !name_ok(&i.name) {
                return Err(format!(
                    "table {}: index name {:?} is invalid",
                    self.name, i.name
                ));
            }
            if !seen.insert(i.name.as_str()) {
                return Err(format!(
                    "table {}: index {} declared twice",
                    self.name, i.name
                ));
            }
        }
        if matches!(self.ttl_attribute.as_deref(), Some(a) if self.key_attributes().contains(a)) {
            return Err(format!(
                "table {}: the TTL attribute cannot be a key attribute",
                self.name
            ));
        }
        if let Billing::Provisioned { read, write } = self.billing
            && (read == 0 || write == 0)
        {
            return Err(format!(
                "table {}: provisioned capacity needs at least 1 read and 1 write unit",
                self.name
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableDecl {
        toml::from_str(
            r#"
            name = "fleet"
            partition_key = "PK"
            sort_key = "SK"
            ttl_attribute = "expiration"
            [[index]]
            name = "GSI1"
            partition_key = "GSI1PK"
            sort_key = "GSI1SK"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_table_reads_with_defaults() {
        let t = table();
        assert_eq!(t.billing, Billing::PayPerRequest);
        assert_eq!(t.indexes[0].projection, Projection::All);
        assert_eq!(
            t.key_attributes().into_iter().collect::<Vec<_>>(),
            ["GSI1PK", "GSI1SK", "PK", "SK"]
        );
        assert!(t.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_declarations_are_refused() {
        let err =
            toml::from_str::<TableDecl>("name = \"t1\"\npartition_key = \"PK\"\nsortkey = \"SK\"")
                .unwrap_err();
        assert!(err.to_string().contains("sortkey"), "{err}");
        let mut t = table();
        t.ttl_attribute = Some("PK".into());
        assert!(t.validate().unwrap_err().contains("TTL"));
        let mut t = table();
        t.indexes.push(t.indexes[0].clone());
        assert!(t.validate().unwrap_err().contains("twice"));
        let mut t = table();
        t.name = "x".into();
        assert!(t.validate().is_err());
        let mut t = table();
        t.billing = Billing::Provisioned { read: 0, write: 5 };
        assert!(t.validate().is_err());
    }

    #[test]
    fn provisioned_billing_reads_from_a_table() {
        let b: Billing = toml::from_str("mode = \"provisioned\"\nread = 5\nwrite = 10").unwrap();
        assert_eq!(b, Billing::Provisioned { read: 5, write: 10 });
    }
}
