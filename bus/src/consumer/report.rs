//! What a consumer did, message by message, when it stopped.

use std::fmt;

/// How every message a consumer received was settled. Each received message is counted in
/// exactly one of the outcome fields, when its settlement is confirmed or given up, so
/// `received == settled()` exactly; a message counted twice would show as much as one lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Messages received (each receive of a message counts once).
    pub received: u64,
    /// Handled successfully and deleted.
    pub acked: u64,
    /// Failed transiently; made visible again after a backoff delay.
    pub retried: u64,
    /// Sent to the dead-letter queue with a reason, then deleted.
    pub dead_lettered: u64,
    /// Handed back unprocessed with visibility 0 (shutdown, or behind a failed FIFO message).
    pub released: u64,
    /// The lease could not be kept while the handler ran: the handler was cancelled; the queue
    /// redelivers the message.
    pub lease_lost: u64,
    /// A settling call (delete, visibility change, dead-letter send) failed for good, or the
    /// lease ran out before it succeeded; the message reappears when its visibility timeout ends.
    pub settle_failed: u64,
    /// Not settled when shutdown's deadline passed (a handler stuck past its cancellation, or a
    /// settling call that did not answer); the message reappears after its visibility timeout.
    pub abandoned: u64,
    /// Of `settle_failed`, those given up after the shutdown began (handlers finishing, then
    /// settlements flushed): messages the drain itself
    /// left unsettled (not an outcome of its own). A settlement given up earlier was out of the
    /// engine's hands before the shutdown, and its message reappears after its visibility timeout
    /// whatever the drain does.
    pub settle_failed_in_drain: u64,
    /// FIFO messages tried again in place after a transient failure (not an outcome: the
    /// message still ends in one of the above).
    pub retried_in_place: u64,
    /// Handler panics (counted as transient failures).
    pub panics: u64,
    /// Handler timeouts (counted as transient failures).
    pub timeouts: u64,
    /// Visibility extensions made for messages being handled or settled.
    pub extensions: u64,
}

impl ShutdownReport {
    /// Messages with a final outcome.
    pub fn settled(&self) -> u64 {
        self.acked
            + self.retried
            + self.dead_lettered
            + self.released
            + self.lease_lost
            + self.settle_failed
            + self.abandoned
    }

    /// Whether every received message was counted in exactly one outcome.
    pub fn is_balanced(&self) -> bool {
        self.received == self.settled()
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} | acked {} | retried {} | dead-lettered {} | released {} | lease lost {} | settle failed {} | abandoned {}",
            self.received,
            self.acked,
            self.retried,
            self.dead_lettered,
            self.released,
            self.lease_lost,
            self.settle_failed,
            self.abandoned,
        )?;
        if self.settle_failed_in_drain > 0 {
            write!(
                f,
                " | settle failed during the drain {}",
                self.settle_failed_in_drain
            )?;
        }
        if !self.is_balanced() {
            write!(f, " | UNBALANCED: {} settled", self.settled())?;
        }
        Ok(())
    }
}
