//! An embedded bus with a queue redriving into its dead-letter queue, and a consumer running in
//! the background (after `bus/tests/common`).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{
    Consumer, Declaration, Message, OutgoingMessage, QueueCounts, QueueDecl, ReceiveRequest,
    ShutdownReport, Transport,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn dlq_name(name: &str) -> String {
    format!("{name}-dlq")
}

/// A bus with `name` redriving into `name-dlq` after `max_receive_count` receives.
pub async fn bus_with_queue(name: &str, max_receive_count: u32) -> EmbeddedBus {
    let bus = EmbeddedBus::new();
    let dlq = dlq_name(name);
    bus.declare(&Declaration::Queue(&QueueDecl::new(&dlq)))
        .await
        .unwrap();
    let q = QueueDecl::new(name)
        .visibility_timeout(Duration::from_secs(30))
        .dead_letter(dlq, max_receive_count);
    bus.declare(&Declaration::Queue(&q)).await.unwrap();
    bus
}

pub async fn send_all(bus: &EmbeddedBus, queue: &str, messages: Vec<OutgoingMessage>) {
    let q = bus.queue(queue).await.unwrap();
    for chunk in messages.chunks(10) {
        let r = q.sender().send_batch(chunk).await.unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    }
}

pub async fn counts(bus: &EmbeddedBus, queue: &str) -> QueueCounts {
    bus.queue(queue)
        .await
        .unwrap()
        .admin()
        .describe()
        .await
        .unwrap()
        .counts
}

/// Everything in a queue, received with a long visibility so each message is seen once.
pub async fn peek_all(bus: &EmbeddedBus, queue: &str) -> Vec<Message> {
    let q = bus.queue(queue).await.unwrap();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let request = ReceiveRequest::new(10, Duration::ZERO).visibility(Duration::from_secs(3600));
        let got = q.queue().receive(&request).await.unwrap();
        if got.is_empty() {
            return out;
        }
        for m in got {
            if seen.insert(m.id.clone()) {
                out.push(m);
            }
        }
    }
}

/// Waits (on the test's clock) until `done` holds, checking every 50 ms, for at most `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the queue holds nothing: no visible, in-flight or delayed message.
pub async fn wait_drained(bus: &EmbeddedBus, queue: &str, limit: Duration) {
    wait_for(limit, || async {
        counts(bus, queue).await == QueueCounts::default()
    })
    .await;
}

pub struct Running {
    pub token: CancellationToken,
    pub handle: JoinHandle<Result<ShutdownReport, fleet_bus::BusError>>,
}

impl Running {
    pub async fn stop(self) -> ShutdownReport {
        self.token.cancel();
        self.handle.await.unwrap().unwrap()
    }
}

pub fn spawn(consumer: Consumer) -> Running {
    let token = CancellationToken::new();
    let handle = tokio::spawn(consumer.run(token.clone()));
    Running { token, handle }
}
