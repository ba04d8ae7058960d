//! The `fleet` command: run the fleet, provision it, operate it. Everything is in
//! `fleet_workers::cli`.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fleet_workers::cli::main().await
}
