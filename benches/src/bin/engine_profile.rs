//! The engine's cost in instructions: preloads N messages, then (unless
//! `FLEET_PROFILE_PRELOAD_ONLY` is set) drains them with a no-op consumer that stops once every
//! message was handled. Run both under `valgrind --tool=callgrind` and subtract (benches/README.md).
//!
//! `FLEET_PROFILE_HELD=k` makes the first k handlers wait until every other message was handled,
//! so the settler holds k leases while the rest go through (the in-flight limit is raised to
//! k + 10): the case where the cost of finding due leases grows with the leases held.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleet_benches::loaded_bus;
use fleet_bus::Consumer;
use fleet_bus::consumer::{Delivery, handler_fn};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::var("FLEET_PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let bus = loaded_bus(n).await;
        if std::env::var_os("FLEET_PROFILE_PRELOAD_ONLY").is_some() {
            return;
        }
        let held: usize = std::env::var("FLEET_PROFILE_HELD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(held < n, "FLEET_PROFILE_HELD must be below FLEET_PROFILE_N");
        let token = CancellationToken::new();
        let release = CancellationToken::new();
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (t, r) = (token.clone(), release.clone());
        let consumer = Consumer::new(bus.clone(), "bench")
            .handler(handler_fn(move |_d: Delivery| {
                let k = started.fetch_add(1, Ordering::Relaxed) + 1;
                let (t, r, finished) = (t.clone(), r.clone(), finished.clone());
                async move {
                    if k <= held {
                        r.cancelled().await;
                    }
                    // Every other message was handled: the held ones may go.
                    let f = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    if f == n - held {
                        r.cancel();
                    }
                    if f == n {
                        t.cancel();
                    }
                    Ok(())
                }
            }))
            .configure(|c| {
                c.pollers = 1;
                c.max_in_flight = std::env::var("FLEET_PROFILE_IN_FLIGHT")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .or((held > 0).then_some(held + 10));
                c.flush_interval = Duration::from_millis(5);
            });
        let report = consumer.run(token).await.expect("run");
        assert_eq!(report.acked as usize, n, "{report}");
        println!("{report}");
    });
}
