//! DynamoDB idempotency stores on fresh tables in moto, for the conformance suite and its stress
//! reruns.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use fleet_bus::scenarios::unique_name;
use fleet_tests::moto;
use fleet_workers::aws_calls::AwsCalls;
use fleet_workers::idempotency::{DynamoIdempotencyStore, KeyMode};

/// A standalone idempotency table keyed by `id`, as Powertools creates it.
async fn standalone_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// A DynamoDB store on a fresh table of its mode, its calls counted in `calls`.
pub async fn dynamo_store(mode: KeyMode, calls: &AwsCalls) -> DynamoIdempotencyStore {
    let config = moto::sdk_config().await;
    let table = unique_name("idempotency");
    let client = calls.dynamodb_client(&config);
    match mode {
        KeyMode::Standalone => standalone_table(&client, &table).await,
        KeyMode::SingleTable => {
            fleet_tests::dynamo::single_table(&config, &table).await;
        }
    }
    DynamoIdempotencyStore::new(client, table, mode)
}
