//! SNS semantics shared by every transport: filter policies and the notification envelope.

mod envelope;
mod filter_policy;

pub use envelope::SnsEnvelope;
pub use filter_policy::{FilterPolicy, FilterPolicyError, FilterScope};
