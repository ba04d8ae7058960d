#![allow(dead_code)] // each test binary uses a different part
//! A handler that records every run: when it started, when it ended (returned, or was dropped
//! because it was cancelled), and whether it finished its work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_bus::consumer::{Delivery, HandlerError, MessageHandler, handler_fn};
use tokio::time::Instant;

/// One handler run as the test saw it.
#[derive(Clone, Debug)]
pub struct Run {
    pub start: Instant,
    pub end: Option<Instant>,
    pub finished: bool,
}

/// Every run of the handlers it made.
#[derive(Clone, Default)]
pub struct Runs(Arc<Mutex<Vec<Run>>>);

/// Records the end of a run when the handler's future completes or is dropped.
struct EndOfRun(Runs, usize);

impl Drop for EndOfRun {
    fn drop(&mut self) {
        self.0.0.lock().expect("lock")[self.1].end = Some(Instant::now());
    }
}

impl Runs {
    /// A handler that works `work` per message, then succeeds.
    pub fn handler(&self, work: Duration) -> MessageHandler {
        let runs = self.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                let i = {
                    let mut l = runs.0.lock().expect("lock");
                    l.push(Run {
                        start: Instant::now(),
                        end: None,
                        finished: false,
                    });
                    l.len() - 1
                };
                let _end = EndOfRun(runs.clone(), i);
                tokio::time::sleep(work).await;
                runs.0.lock().expect("lock")[i].finished = true;
                Ok::<(), HandlerError>(())
            }
        })
    }

    /// Every run so far, in the order they started.
    pub fn all(&self) -> Vec<Run> {
        self.0.lock().expect("lock").clone()
    }

    /// Runs started, and runs ended.
    pub fn counts(&self) -> (usize, usize) {
        let l = self.0.lock().expect("lock");
        (l.len(), l.iter().filter(|r| r.end.is_some()).count())
    }
}
