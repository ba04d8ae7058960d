//! The workers' single DynamoDB table on the emulator, created by the same provisioning code as
//! `fleet provision`, from the declaration in `deploy/topology.toml`, under a unique name.

use aws_config::SdkConfig;
use fleet_bus::{TableDecl, Topology};

/// The topology file every deployment uses.
const TOPOLOGY: &str = include_str!("../../deploy/topology.toml");

/// The declared single table (`fleet`), renamed.
///
/// # Panics
/// When the topology does not declare it.
pub fn single_table_decl(name: &str) -> TableDecl {
    let topology = Topology::from_toml(TOPOLOGY).expect("deploy/topology.toml is valid");
    let mut decl = topology
        .table("fleet")
        .expect("deploy/topology.toml declares the table fleet")
        .clone();
    decl.name = name.to_owned();
    decl
}

/// Creates the single table under `name` on the emulator (through `fleet provision`'s code) and
/// returns a client for it.
///
/// # Panics
/// When provisioning fails.
pub async fn single_table(config: &SdkConfig, name: &str) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(config);
    fleet_bus::aws::table::apply_table(&client, &single_table_decl(name))
        .await
        .expect("create the single table");
    client
}
