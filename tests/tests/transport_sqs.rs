//! The transport scenario suite on the SQS/SNS transport, against moto_server through the real
//! AWS SDK clients. Where moto 5.2.5 differs from AWS, `Features` says so and the scenario adapts
//! (`fleet_tests::moto::test_bus`).

/// Test names read `sqs::<scenario>`.
mod sqs {
    fleet_bus::scenario_tests!(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)],
        fleet_tests::moto::test_bus
    );
}
