//! The order store conformance suite (`orders_conformance/`): `MemoryOrderStore` and
//! `DynamoOrderStore` (on moto, one fresh single table per test) pass the same tests.

#![allow(clippy::unwrap_used)]

mod common;
mod orders_conformance;

macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            use crate::orders_conformance as suite;
            $(#[tokio::test]
            async fn $case() {
                suite::$case(suite::memory().await).await;
            })+
        }
        mod dynamo {
            use crate::orders_conformance as suite;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                suite::$case(suite::dynamo().await).await;
            })+
        }
    };
}

orders_conformance::order_store_cases!(conformance);
