//! The transport scenario suite on the embedded transport, on tokio's paused clock.

#![allow(clippy::unwrap_used)]

async fn embedded() -> fleet_bus::scenarios::TestBus {
    fleet_bus::scenarios::TestBus::embedded()
}

/// Test names read `embedded::<scenario>`.
mod embedded {
    fleet_bus::scenario_tests!(#[tokio::test(start_paused = true)], super::embedded);
}
