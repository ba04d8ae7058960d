//! Scenarios of the idempotency layer over a store: what a handler sees end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::ServiceExt;

use super::{delivery, layer, unique_key};
use crate::consumer::{Delivery, FailureKind, HandlerError, MessageHandler, handler_fn};
use crate::idempotency::{IdempotencyStore, labels};

type Store = Arc<dyn IdempotencyStore>;

const LEASE: Duration = Duration::from_secs(30);

/// A handler that counts its runs, and waits until `refused` reaches `wait_for` (so every
/// concurrent claim is answered while it holds the record), at most 20 s.
fn counting(
    runs: &Arc<AtomicUsize>,
    refused: &Arc<AtomicUsize>,
    wait_for: usize,
) -> MessageHandler {
    let (runs, refused) = (runs.clone(), refused.clone());
    handler_fn(move |_d: Delivery| {
        let (runs, refused) = (runs.clone(), refused.clone());
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let wait = async {
                while refused.load(Ordering::SeqCst) < wait_for {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(20), wait).await;
            Ok(())
        }
    })
}

pub async fn fifty_concurrent_deliveries_run_the_handler_once(store: Store) {
    let body = serde_json::json!({"id": unique_key("order-event"), "total": 42}).to_string();
    let (runs, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handler = layer(store).wrap(counting(&runs, &refused, 49));
    let calls = (0..50).map(|_| {
        let (h, refused) = (handler.clone(), refused.clone());
        let d = delivery(&body, LEASE);
        async move {
            let r = h.oneshot(d).await;
            if r.is_err() {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            r
        }
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.label(), labels::IN_PROGRESS, "{e}");
        assert_eq!(e.kind(), FailureKind::Transient);
        let wait = e.requested_delay().unwrap();
        assert!(
            wait >= Duration::from_secs(1) && wait <= LEASE + Duration::from_secs(1),
            "{wait:?}"
        );
    }
    // Their retries find the work done: hits, the handler not run again.
    let retries = (0..50).map(|_| handler.clone().oneshot(delivery(&body, LEASE)));
    let results = futures::future::join_all(retries).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "hits do not run the handler"
    );
}

pub async fn the_layer_settles_each_outcome(store: Store) {
    let key = unique_key("outcomes");
    let body = serde_json::json!({"id": key, "n": 1}).to_string();
    let runs = Arc::new(AtomicUsize::new(0));
    let fail_first = {
        let runs = runs.clone();
        handler_fn(move |_d: Delivery| {
            let runs = runs.clone();
            async move {
                match runs.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(HandlerError::transient(std::io::Error::other("smtp down"))
                        .with_label("smtp_down")),
                    _ => Ok(()),
                }
            }
        })
    };
    let handler = layer(store).wrap(fail_first);
    // A failure is the handler's own, and releases the key: the next delivery runs at once.
    let e = handler
        .clone()
        .oneshot(delivery(&body, LEASE))
        .await
        .unwrap_err();
    assert_eq!(e.label(), "smtp_down");
    handler
        .clone()
        .oneshot(delivery(&body, LEASE))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // A duplicate is a hit.
    handler
        .clone()
        .oneshot(delivery(&body, LEASE))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The same key with another payload is dead-lettered, whitespace and key order aside.
    let reordered = format!("{{ \"n\": 1, \"id\": \"{key}\" }}");
    handler
        .clone()
        .oneshot(delivery(&reordered, LEASE))
        .await
        .unwrap();
    let changed = serde_json::json!({"id": key, "n": 2}).to_string();
    let e = handler
        .clone()
        .oneshot(delivery(&changed, LEASE))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.label()),
        (FailureKind::Permanent, labels::KEY_REUSED),
        "{e}"
    );
    // A key function's error is returned as it is.
    let e = handler
        .clone()
        .oneshot(delivery("not json", LEASE))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FailureKind::Permanent);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
