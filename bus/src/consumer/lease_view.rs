//! A handler's read-only view of its message's visibility lease, which the settler moves on each
//! confirmed extension: work that outlives a message must not outlive its lease (an idempotency
//! record's in-progress lease follows it).

use tokio::sync::watch;
use tokio::time::Instant;

/// When the delivery's visibility lease runs out unless extended, as last confirmed by the engine.
///
/// The deadline is conservative (counted from the receive's response, less a margin), and moves
/// only once SQS has confirmed an extension, never when one is merely asked for.
#[derive(Clone, Debug)]
pub struct LeaseView {
    rx: watch::Receiver<Instant>,
}

impl LeaseView {
    /// A view and the handle that moves it, for the engine.
    pub(crate) fn channel(deadline: Instant) -> (watch::Sender<Instant>, Self) {
        let (tx, rx) = watch::channel(deadline);
        (tx, Self { rx })
    }

    /// A view that never moves: for deliveries built outside the engine (tests, tools).
    pub fn fixed(deadline: Instant) -> Self {
        let (_, view) = Self::channel(deadline);
        view
    }

    /// When the lease runs out unless it is extended.
    pub fn deadline(&self) -> Instant {
        *self.rx.borrow()
    }

    /// Waits until the deadline moves and returns the new one; `None` once it can move no more
    /// (the message is settled, its lease given up, or the view is fixed).
    pub async fn changed(&mut self) -> Option<Instant> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn moves_with_its_sender_and_ends_when_it_is_dropped() {
        let t = Instant::now();
        let (tx, mut view) = LeaseView::channel(t);
        assert_eq!(view.deadline(), t);
        tx.send_replace(t + Duration::from_secs(30));
        assert_eq!(view.changed().await, Some(t + Duration::from_secs(30)));
        drop(tx);
        assert_eq!(view.changed().await, None);
        let mut fixed = LeaseView::fixed(t);
        assert_eq!((fixed.deadline(), fixed.changed().await), (t, None));
    }
}
