//! Stress reruns of the transport scenario suite: every scenario `FLEET_STRESS` times at once
//! (default 2), each run on a fresh bus with its own queues, on the embedded transport and on
//! SQS/SNS against moto_server. `FLEET_STRESS=20 cargo test -p fleet-tests --test
//! transport_stress` for a longer hunt.

use fleet_bus::scenarios::{self, TestBus};
use fleet_tests::stress::stress;

/// On one paused clock, as the embedded scenarios run one by one: the runs are tasks of this
/// test's runtime, and time moves only when every one of them waits, so each scenario still sees
/// exactly the time it waited for.
#[tokio::test(start_paused = true)]
async fn embedded() {
    stress("embedded", scenarios::all(), || async {
        TestBus::embedded()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs() {
    stress("sqs", scenarios::all(), fleet_tests::moto::test_bus).await;
}
