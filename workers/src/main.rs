//! The `fleet` command: run the fleet, provision it, operate it. Everything is in
//! `fleet_workers::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fleet_workers::cli::main().await
}
