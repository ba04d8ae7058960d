//! `fleet scaling target` on an exposition recorded from a real consumer's handler durations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{common, fleet};
use fleet_bus::consumer::{Delivery, handler_fn};
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::scenarios::support::{declare_with_dlq, send_all, wait_until};
use fleet_bus::scenarios::unique_name;
use fleet_bus::{Consumer, OutgoingMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_target_is_latency_over_the_time_per_message_from_a_real_exposition() {
    use fleet_workers::observe::{Observability, Probes};
    let bus = EmbeddedBus::new();
    let queue = unique_name("scaling");
    declare_with_dlq(&bus, &queue, 5, Duration::from_secs(60)).await;
    let endpoints = Observability::start(
        "127.0.0.1:0".parse().unwrap(),
        Probes::new(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let handler = {
        let done = done.clone();
        handler_fn(move |_: Delivery| {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let handle = Consumer::new(bus.clone(), &queue)
        .configure(|c| {
            c.concurrency = Some(4);
            c.wait_time = Duration::from_secs(1);
            c.handler_name = "orders".into();
        })
        .handler(handler)
        .start()
        .await
        .unwrap();
    let messages = (0..40)
        .map(|i| OutgoingMessage::new(format!("m{i}")))
        .collect();
    send_all(&bus, &queue, messages).await;
    wait_until(Duration::from_secs(20), || async {
        done.load(Ordering::SeqCst) == 40
    })
    .await;
    handle.shutdown().await.unwrap();
    let exposition = common::observe::scrape(endpoints.address).await;
    let dir = std::env::temp_dir().join(unique_name("fleet-scaling"));
    std::fs::create_dir_all(&dir).unwrap();
    let recorded = dir.join("metrics.txt");
    std::fs::write(&recorded, &exposition).unwrap();

    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/fleet.toml");
    let out = fleet(&[
        "scaling",
        "target",
        "--latency",
        "30s",
        "--worker",
        "orders",
        "--metrics",
        recorded.to_str().unwrap(),
        "--config",
        shipped,
    ]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    println!("{}", out.stdout);
    let value = |name: &str| common::observe::sum(&exposition, name, &["worker=\"orders\""]);
    let (sum, count) = (
        value("fleet_handler_duration_seconds_sum"),
        value("fleet_handler_duration_seconds_count"),
    );
    assert_eq!(count, 40.0);
    // deploy/fleet.toml runs orders with concurrency 20.
    let expected = (30.0 * 20.0 / (sum / count)).floor();
    assert!(
        out.stdout.contains("concurrency per task:   20"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("backlog per task target: {expected} ")),
        "expected {expected}: {}",
        out.stdout
    );
}
