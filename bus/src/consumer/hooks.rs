//! Two hooks a worker gives its consumer: a [`PauseGate`] that stops polling while a dependency
//! refuses every message (an email account whose sending is paused), and a [`Redactor`] that
//! every handler error text passes through before it is logged or written into a dead-letter
//! reason (so a worker handling personal data keeps it out of both).

use std::sync::Arc;

use tokio::sync::watch;

/// Rewrites a handler error's text before the engine logs it or records it in a dead letter.
pub type Redactor = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Stops a consumer's polling while closed, with the reason. Messages already received finish
/// as usual; nothing is received until the gate opens again. Cloning shares the gate.
#[derive(Clone, Debug)]
pub struct PauseGate {
    state: Arc<watch::Sender<Option<String>>>,
}

impl Default for PauseGate {
    fn default() -> Self {
        Self::new()
    }
}

impl PauseGate {
    /// An open gate.
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Closes the gate with `reason`; `true` if it was open.
    pub fn pause(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        self.state.send_if_modified(|s| {
            let was_open = s.is_none();
            *s = Some(reason);
            was_open
        })
    }

    /// Opens the gate; `true` if it was closed.
    pub fn resume(&self) -> bool {
        self.state.send_if_modified(|s| s.take().is_some())
    }

    /// Why polling is paused, if it is.
    pub fn paused(&self) -> Option<String> {
        self.state.borrow().clone()
    }

    /// Waits until the gate is open (at once if it is).
    pub async fn opened(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(Option::is_none).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_gate_holds_waiters_until_it_opens() {
        let gate = PauseGate::new();
        gate.opened().await;
        assert!(gate.pause("SendingPaused"));
        assert!(!gate.pause("again"));
        assert_eq!(gate.paused().as_deref(), Some("again"));
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.opened().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(gate.resume());
        waiter.await.unwrap();
        assert!(!gate.resume());
        assert_eq!(gate.paused(), None);
    }
}
