//! Shared helpers for the end-to-end tests: the AWS emulator (moto_server) that the tests start
//! themselves, and SDK configuration pointing at it; a real Prometheus and promtool; fault
//! proxies between the SDK and the emulator.

pub mod dynamo;
pub mod faults;
pub mod fleet;
pub mod http;
pub mod moto;
pub mod prometheus;
pub mod ses;
pub mod smtp;
pub mod stress;
