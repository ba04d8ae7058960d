//! Writes Fleet's JSON Schemas: `cargo run -p fleet-schemas --bin export-schemas [DIR]`
//! (default: `schemas/json` in this repository).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("json"),
        PathBuf::from,
    );
    match fleet_schemas::write_json_schemas(&dir) {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("export-schemas: cannot write {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
