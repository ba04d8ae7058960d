//! Each worker's IAM permissions, derived from the AWS operations its code issues.
//! (Being built for issue 12; see `workers/src/deploy/mod.rs`.)
