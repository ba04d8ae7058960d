//! The engine's cost in instructions: preloads N messages, then (unless
//! `FLEET_PROFILE_PRELOAD_ONLY` is set) drains them with a no-op consumer that stops once every
//! message was handled. Run both under `valgrind --tool=callgrind` and subtract (benches/README.md).

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
        let token = CancellationToken::new();
        let handled = Arc::new(AtomicUsize::new(0));
        let (h, t) = (handled.clone(), token.clone());
        let consumer = Consumer::new(bus.clone(), "bench")
            .handler(handler_fn(move |_d: Delivery| {
                if h.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    t.cancel();
                }
                async { Ok(()) }
            }))
            .configure(|c| {
                c.pollers = 1;
                c.max_in_flight = std::env::var("FLEET_PROFILE_IN_FLIGHT")
                    .ok()
                    .and_then(|v| v.parse().ok());
                c.flush_interval = Duration::from_millis(5);
            });
        let report = consumer.run(token).await.expect("run");
        assert_eq!(report.acked as usize, n, "{report}");
        println!("{report}");
    });
}
