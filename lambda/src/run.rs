//! Running handlers as the engine does: a panic caught, the time bounded, and whatever happens
//! one [`Ran`] per message.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use fleet_bus::Delivery;
use fleet_bus::consumer::{BatchHandler, FailureKind, HandlerError, MessageHandler};
use futures::FutureExt;
use tokio::time::Instant;
use tower::ServiceExt;

/// How a handler ended for one message.
#[derive(Debug)]
pub(crate) enum Ran {
    Ok,
    Failed {
        kind: FailureKind,
        label: String,
        message: String,
    },
}

impl Ran {
    pub(crate) fn transient(label: &str, message: String) -> Self {
        Ran::Failed {
            kind: FailureKind::Transient,
            label: label.to_owned(),
            message,
        }
    }

    fn from_error(e: &HandlerError) -> Self {
        Ran::Failed {
            kind: e.kind(),
            label: e.label().to_owned(),
            message: e.cause_text(),
        }
    }
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned())
}

/// Runs a per-message handler until `until` (the invocation's handler deadline).
pub(crate) async fn run_one(handler: MessageHandler, delivery: Delivery, until: Instant) -> Ran {
    let call = AssertUnwindSafe(handler.oneshot(delivery)).catch_unwind();
    match tokio::time::timeout_at(until, call).await {
        Err(_) => Ran::transient(
            "timeout",
            "handler stopped: the invocation's time ran out".to_owned(),
        ),
        Ok(Err(panic)) => Ran::transient(
            "panic",
            format!("handler panicked: {}", panic_text(&*panic)),
        ),
        Ok(Ok(Ok(()))) => Ran::Ok,
        Ok(Ok(Err(e))) => Ran::from_error(&e),
    }
}

/// Runs a batch handler on every delivery at once; one outcome per delivery, in order.
pub(crate) async fn run_batch(
    handler: BatchHandler,
    deliveries: Vec<Delivery>,
    until: Instant,
) -> Vec<Ran> {
    let n = deliveries.len();
    let call = AssertUnwindSafe(handler.oneshot(deliveries)).catch_unwind();
    let all = |make: &dyn Fn() -> Ran| (0..n).map(|_| make()).collect::<Vec<_>>();
    match tokio::time::timeout_at(until, call).await {
        Err(_) => all(&|| {
            Ran::transient(
                "timeout",
                "batch handler stopped: the invocation's time ran out".to_owned(),
            )
        }),
        Ok(Err(panic)) => {
            let text = panic_text(&*panic);
            all(&|| Ran::transient("panic", format!("batch handler panicked: {text}")))
        }
        Ok(Ok(Err(e))) => all(&|| Ran::from_error(&e)),
        Ok(Ok(Ok(results))) if results.len() != n => {
            let text = format!(
                "batch handler returned {} outcomes for {n} messages",
                results.len()
            );
            all(&|| Ran::transient("bad_batch_result", text.clone()))
        }
        Ok(Ok(Ok(results))) => results
            .into_iter()
            .map(|r| match r {
                Ok(()) => Ran::Ok,
                Err(e) => Ran::from_error(&e),
            })
            .collect(),
    }
}
