//! The transport scenario suite on the SQS/SNS transport, against moto_server through the real
//! AWS SDK clients. Where moto 5.2.5 differs from AWS, `Features` says so and the scenario adapts.

use std::sync::Arc;
use std::time::Duration;

use fleet_bus::scenarios::{Features, TestBus};

async fn sqs() -> TestBus {
    TestBus {
        transport: Arc::new(fleet_tests::moto::transport().await),
        features: Features {
            name: "sqs (moto 5.2.5)",
            paused_clock: false,
            clock_slack: Duration::from_millis(500),
            exclusive_receive: false,
            or_filter: true,
            or_filter_in_body: false,
            equals_ignore_case: false,
            max_message_bytes: fleet_bus::limits::MAX_SQS_MESSAGE_BYTES,
            retention_expiry: false,
            dedup_window: false,
            validates_body_characters: false,
        },
    }
}

/// Test names read `sqs::<scenario>`.
mod sqs {
    fleet_bus::scenario_tests!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)], super::sqs);
}
