//! Fleet workers.
