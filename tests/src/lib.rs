//! Shared helpers for the end-to-end tests: the AWS emulator (moto_server) that the tests start
//! themselves, and SDK configuration pointing at it.

pub mod dynamo;
pub mod fleet;
pub mod moto;
pub mod ses;
pub mod smtp;
