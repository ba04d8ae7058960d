//! TEMPORARY placeholder until the real evaluator lands (same API).
use crate::message::MessageAttributes;
/// Where a filter policy looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FilterScope {
    #[default]
    MessageAttributes,
    MessageBody,
}
/// A parsed policy.
#[derive(Clone, Debug)]
pub struct FilterPolicy {
    scope: FilterScope,
}
/// Policy error.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum FilterPolicyError {
    #[error("bad")]
    Bad,
}
impl FilterPolicy {
    /// Parses.
    pub fn parse(_json: &str, scope: FilterScope) -> Result<FilterPolicy, FilterPolicyError> {
        Ok(Self { scope })
    }
    /// Scope.
    pub fn scope(&self) -> FilterScope {
        self.scope
    }
    /// Matches.
    pub fn matches(&self, _a: &MessageAttributes, _b: &str) -> bool {
        true
    }
}
