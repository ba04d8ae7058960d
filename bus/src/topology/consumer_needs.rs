//! What Fleet's consumer needs of a queue beyond what SQS accepts. [`provision`](super::provision)
//! checks it, so a topology that provisions is one the consumer runs on; a single
//! [`Declaration`](super::Declaration) is checked only against SQS's own rules.

use super::Topology;
use crate::consumer::MIN_VISIBILITY;
use crate::error::BusError;

impl Topology {
    /// Checks every queue against what a consumer with default settings refuses: a visibility
    /// timeout shorter than [`MIN_VISIBILITY`]. (`max_receive_count` of 1 to 1,000 and a
    /// dead-letter queue of the same kind are already SQS's rules, see [`Topology::validate`].)
    ///
    /// # Errors
    /// `Topology` naming the first queue the consumer would refuse.
    pub fn check_consumer_needs(&self) -> Result<(), BusError> {
        for q in &self.queues {
            if q.visibility_timeout_duration() < MIN_VISIBILITY {
                return Err(BusError::Topology(format!(
                    "queue {}: a visibility timeout of {} s is shorter than the {} s the consumer needs to hold a message while it runs",
                    q.name,
                    q.visibility_timeout_seconds,
                    MIN_VISIBILITY.as_secs()
                )));
            }
        }
        Ok(())
    }
}
