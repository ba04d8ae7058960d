//! Each worker's handler, built from the process's backends and configuration.

use fleet_bus::consumer::Handler;

use super::backends::Backends;
use super::config::{FleetConfig, WorkerKind};

/// The in-memory stores of an embedded run, kept so a caller (the demo) can read them.
#[derive(Default)]
pub struct MemoryStores {}

/// Builds one worker's handler.
///
/// # Errors
/// When the worker's publisher cannot be opened.
pub async fn handler_for(
    worker: WorkerKind,
    _backends: &Backends,
    _config: &FleetConfig,
) -> Result<Handler, fleet_bus::BusError> {
    Err(fleet_bus::BusError::Config(format!(
        "worker {worker} is not built yet"
    )))
}
