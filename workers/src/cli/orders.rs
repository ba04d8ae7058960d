//! `fleet orders show` and `fleet orders list`: orders as the orders worker keeps them in the
//! single table.

use std::process::ExitCode;

use clap::Subcommand;

use super::{CliResult, aws};
use crate::orders::{DynamoOrderStore, OrderStore, read};
use crate::table::DEFAULT_TABLE;

#[derive(Subcommand)]
pub(super) enum OrdersCommand {
    /// Show one order, found by its id through GSI1: its status, money, shipment, the events
    /// applied to it and the outgoing events not yet published.
    Show {
        /// The order's id.
        order_id: String,
        /// The table.
        #[arg(long, default_value = DEFAULT_TABLE)]
        table: String,
    },
    /// List one customer's orders (a Query on the customer's partition).
    List {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The table.
        #[arg(long, default_value = DEFAULT_TABLE)]
        table: String,
    },
}

/// Runs a `fleet orders` command.
pub(super) async fn run_orders(command: OrdersCommand) -> CliResult {
    let (_, config) = aws().await?;
    let client = aws_sdk_dynamodb::Client::new(&config);
    match command {
        OrdersCommand::Show { order_id, table } => {
            let store = DynamoOrderStore::new(client, &table);
            match store.load(&order_id).await? {
                Some(loaded) => {
                    print!("{}", read::show(&loaded));
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(format!(
                    "no order {} in table {table} (an order placed a moment ago may take a moment to appear in GSI1)",
                    crate::terminal::escape(&order_id)
                )
                .into()),
            }
        }
        OrdersCommand::List { customer, table } => {
            let store = DynamoOrderStore::new(client, &table);
            let orders = store.customer_orders(&customer).await?;
            print!("{}", read::list(&customer, &orders));
            Ok(ExitCode::SUCCESS)
        }
    }
}
