//! A role against what a process issued, both ways: an issued action the role does not grant
//! would be refused on AWS (missing); a granted action nothing issued is more than the worker
//! needs (extra), and so is a key prefix it never touched.

use std::collections::BTreeSet;
use std::fmt;

use super::Permission;
use crate::iam_actions::IssuedAction;

/// What differs between a role's grants and a process's issued actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Issued but not granted (or granted for other key prefixes).
    pub missing: Vec<String>,
    /// Granted but never issued (or a granted key prefix never touched).
    pub extra: Vec<String>,
}

impl Diff {
    /// Whether the role grants exactly what was issued.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.missing {
            writeln!(f, "missing: {m}")?;
        }
        for e in &self.extra {
            writeln!(f, "extra:   {e}")?;
        }
        Ok(())
    }
}

/// Compares the unconditional grants (a grant under a template condition, the queue key's, is
/// left out: the process ran without it) with what was issued.
pub fn compare(granted: &[Permission], issued: &[IssuedAction]) -> Diff {
    let granted: Vec<&Permission> = granted.iter().filter(|p| p.when.is_none()).collect();
    let mut diff = Diff::default();
    for i in issued {
        let grant = granted
            .iter()
            .find(|g| g.action == i.action && g.resource.covers(&i.resource));
        match grant {
            None => diff.missing.push(i.to_string()),
            Some(g) => match &g.leading_keys {
                Some(allowed) => {
                    let outside: Vec<&String> = i
                        .leading_keys
                        .iter()
                        .filter(|k| !allowed.contains(k))
                        .collect();
                    if !outside.is_empty() {
                        diff.missing.push(format!("{i} (not granted: {outside:?})"));
                    }
                }
                None if !i.leading_keys.is_empty() => diff
                    .extra
                    .push(format!("{g} (granted on every key; issued only on {i})")),
                None => {}
            },
        }
    }
    for g in granted {
        let uses: Vec<&IssuedAction> = issued
            .iter()
            .filter(|i| g.action == i.action && g.resource.covers(&i.resource))
            .collect();
        if uses.is_empty() {
            diff.extra.push(g.to_string());
            continue;
        }
        if let Some(allowed) = &g.leading_keys {
            let touched: BTreeSet<&String> = uses.iter().flat_map(|i| &i.leading_keys).collect();
            let unused: Vec<&String> = allowed.iter().filter(|k| !touched.contains(k)).collect();
            if !unused.is_empty() {
                diff.extra
                    .push(format!("{g} (key prefixes never touched: {unused:?})"));
            }
        }
    }
    diff
}
