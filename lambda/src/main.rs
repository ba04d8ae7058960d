//! `fleet-lambda`: a Fleet worker on AWS Lambda (`bootstrap` once `cargo lambda build` packages
//! it). The worker is `FLEET_LAMBDA_WORKER`; everything is built once, before the first
//! invocation.

use fleet_lambda::{Environment, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Lambda adds the timestamp and request id to each line: JSON without ANSI colours.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .init();
    let environment = Environment::from_env().await?;
    serve(environment).await
}
