//! `fleet provision`'s DynamoDB half against the emulator: the declared table is created with its
//! indexes and TTL, a second run changes nothing, a new index is added, and keys that differ are
//! refused with what to do.

use fleet_bus::Applied;
use fleet_bus::aws::table::apply_table;
use fleet_bus::topology::IndexDecl;
use fleet_tests::dynamo::single_table_decl;
use fleet_tests::moto;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

#[tokio::test]
async fn the_single_table_is_created_once_and_then_left_alone() {
    let config = moto::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let decl = single_table_decl(&unique("fleet-created"));

    assert_eq!(apply_table(&client, &decl).await.unwrap(), Applied::Created);
    assert_eq!(
        apply_table(&client, &decl).await.unwrap(),
        Applied::Unchanged
    );

    let table = client
        .describe_table()
        .table_name(&decl.name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let mut indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["GSI1", "GSI2"]);
    let ttl = client
        .describe_time_to_live()
        .table_name(&decl.name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expiration")
    );
}

#[tokio::test]
async fn a_new_index_is_added_and_changed_keys_are_refused() {
    let config = moto::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let mut decl = single_table_decl(&unique("fleet-updated"));
    decl.indexes.truncate(1);
    assert_eq!(apply_table(&client, &decl).await.unwrap(), Applied::Created);

    let full = single_table_decl(&decl.name);
    assert_eq!(
        apply_table(&client, &full).await.unwrap(),
        Applied::Updated(vec!["index GSI2 added".to_owned()])
    );
    assert_eq!(
        apply_table(&client, &full).await.unwrap(),
        Applied::Unchanged
    );

    let mut other_keys = full.clone();
    other_keys.sort_key = Some("RK".into());
    let err = apply_table(&client, &other_keys)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&full.name) && err.contains("PK/SK") && err.contains("cannot change"),
        "{err}"
    );
    let mut other_index = full;
    other_index.indexes[0] = IndexDecl {
        partition_key: "OTHER".into(),
        ..other_index.indexes[0].clone()
    };
    let err = apply_table(&client, &other_index)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("index GSI1"), "{err}");
}
