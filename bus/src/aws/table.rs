//! Applying declared DynamoDB tables (feature `dynamodb`): create what is missing, add missing
//! indexes, switch the billing mode and the TTL attribute; report what was done. Every step
//! compares before it writes, so a second run changes nothing. What cannot be changed in place (a
//! table's or an index's keys) is refused with what to do instead, never dropped and recreated.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    Projection as AwsProjection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::error::sdk_error;
use crate::error::BusError;
use crate::topology::{Billing, IndexDecl, Projection, ProvisionReport, TableDecl, Topology};
use crate::transport::Applied;

/// How long a table or index may take to become active before provisioning gives up.
const ACTIVE_WITHIN: Duration = Duration::from_secs(600);
/// How often its status is read meanwhile.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Creates or updates every table a topology declares.
///
/// # Errors
/// When a call fails, or a table exists with other keys than declared.
pub async fn provision_tables(
    client: &Client,
    topology: &Topology,
) -> Result<ProvisionReport, BusError> {
    let mut report = ProvisionReport::default();
    for t in &topology.tables {
        let applied = apply_table(client, t).await?;
        report.entries.push((format!("table {}", t.name), applied));
    }
    Ok(report)
}

/// Creates one table, or brings an existing one to its declaration.
///
/// # Errors
/// When a call fails, or the table's or an index's keys differ from the declaration.
pub async fn apply_table(client: &Client, decl: &TableDecl) -> Result<Applied, BusError> {
    let Some(existing) = describe(client, &decl.name).await? else {
        create(client, decl).await?;
        wait_active(client, &decl.name).await?;
        apply_ttl(client, decl).await?;
        return Ok(Applied::Created);
    };
    check_keys(
        &decl.name,
        "table",
        &existing_keys(existing.key_schema()),
        decl.partition_key.as_str(),
        decl.sort_key.as_deref(),
    )?;
    let mut changes = Vec::new();
    if billing_of(&existing) != decl.billing {
        update_billing(client, decl).await?;
        wait_active(client, &decl.name).await?;
        changes.push("billing".to_owned());
    }
    for index in &decl.indexes {
        let found = existing
            .global_secondary_indexes()
            .iter()
            .find(|g| g.index_name() == Some(index.name.as_str()));
        match found {
            Some(g) => check_keys(
                &decl.name,
                &format!("index {}", index.name),
                &existing_keys(g.key_schema()),
                &index.partition_key,
                index.sort_key.as_deref(),
            )?,
            None => {
                add_index(client, decl, index).await?;
                wait_active(client, &decl.name).await?;
                changes.push(format!("index {} added", index.name));
            }
        }
    }
    for g in existing.global_secondary_indexes() {
        let name = g.index_name().unwrap_or_default();
        if decl.index(name).is_none() {
            tracing::warn!(table = %decl.name, index = name, "the table has an index the topology does not declare; it is left in place");
        }
    }
    if apply_ttl(client, decl).await? {
        changes.push("ttl".to_owned());
    }
    Ok(if changes.is_empty() {
        Applied::Unchanged
    } else {
        Applied::Updated(changes)
    })
}

async fn describe(client: &Client, name: &str) -> Result<Option<TableDescription>, BusError> {
    match client.describe_table().table_name(name).send().await {
        Ok(out) => Ok(out.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(name, "DescribeTable", e)),
    }
}

fn key_schema(partition: &str, sort: Option<&str>) -> Result<Vec<KeySchemaElement>, BusError> {
    let mut keys = vec![key(partition, KeyType::Hash)?];
    if let Some(sort) = sort {
        keys.push(key(sort, KeyType::Range)?);
    }
    Ok(keys)
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, BusError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| BusError::Topology(format!("key {name}: {e}")))
}

fn throughput(billing: Billing) -> Result<Option<ProvisionedThroughput>, BusError> {
    match billing {
        Billing::PayPerRequest => Ok(None),
        Billing::Provisioned { read, write } => ProvisionedThroughput::builder()
            .read_capacity_units(read.into())
            .write_capacity_units(write.into())
            .build()
            .map(Some)
            .map_err(|e| BusError::Topology(format!("capacity: {e}"))),
    }
}

fn projection(p: Projection) -> AwsProjection {
    let kind = match p {
        Projection::All => ProjectionType::All,
        Projection::KeysOnly => ProjectionType::KeysOnly,
    };
    AwsProjection::builder().projection_type(kind).build()
}

fn attribute_definitions(decl: &TableDecl) -> Result<Vec<AttributeDefinition>, BusError> {
    decl.key_attributes()
        .into_iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| BusError::Topology(format!("attribute {name}: {e}")))
        })
        .collect()
}

fn billing_mode(billing: Billing) -> BillingMode {
    match billing {
        Billing::PayPerRequest => BillingMode::PayPerRequest,
        Billing::Provisioned { .. } => BillingMode::Provisioned,
    }
}

async fn create(client: &Client, decl: &TableDecl) -> Result<(), BusError> {
    let mut indexes = Vec::new();
    for i in &decl.indexes {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(&i.name)
                .set_key_schema(Some(key_schema(&i.partition_key, i.sort_key.as_deref())?))
                .projection(projection(i.projection))
                .set_provisioned_throughput(throughput(decl.billing)?)
                .build()
                .map_err(|e| BusError::Topology(format!("index {}: {e}", i.name)))?,
        );
    }
    client
        .create_table()
        .table_name(&decl.name)
        .set_attribute_definitions(Some(attribute_definitions(decl)?))
        .set_key_schema(Some(key_schema(
            &decl.partition_key,
            decl.sort_key.as_deref(),
        )?))
        .billing_mode(billing_mode(decl.billing))
        .set_provisioned_throughput(throughput(decl.billing)?)
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await
        .map_err(|e| sdk_error(&decl.name, "CreateTable", e))?;
    Ok(())
}

async fn update_billing(client: &Client, decl: &TableDecl) -> Result<(), BusError> {
    client
        .update_table()
        .table_name(&decl.name)
        .billing_mode(billing_mode(decl.billing))
        .set_provisioned_throughput(throughput(decl.billing)?)
        .send()
        .await
        .map_err(|e| sdk_error(&decl.name, "UpdateTable", e))?;
    Ok(())
}

async fn add_index(client: &Client, decl: &TableDecl, index: &IndexDecl) -> Result<(), BusError> {
    // DynamoDB creates one index per UpdateTable call.
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(&index.name)
        .set_key_schema(Some(key_schema(
            &index.partition_key,
            index.sort_key.as_deref(),
        )?))
        .projection(projection(index.projection))
        .set_provisioned_throughput(throughput(decl.billing)?)
        .build()
        .map_err(|e| BusError::Topology(format!("index {}: {e}", index.name)))?;
    client
        .update_table()
        .table_name(&decl.name)
        .set_attribute_definitions(Some(attribute_definitions(decl)?))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error(&decl.name, "UpdateTable", e))?;
    Ok(())
}

/// Sets the TTL attribute when it differs; whether it changed anything.
async fn apply_ttl(client: &Client, decl: &TableDecl) -> Result<bool, BusError> {
    let out = client
        .describe_time_to_live()
        .table_name(&decl.name)
        .send()
        .await
        .map_err(|e| sdk_error(&decl.name, "DescribeTimeToLive", e))?;
    let current = out.time_to_live_description().and_then(|d| {
        matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        )
        .then(|| d.attribute_name().unwrap_or_default().to_owned())
    });
    if current.as_deref() == decl.ttl_attribute.as_deref() {
        return Ok(false);
    }
    let (enabled, attribute) = match (&decl.ttl_attribute, &current) {
        (Some(_), Some(other)) => {
            return Err(BusError::Topology(format!(
                "table {}: TTL is on attribute {other}, the topology declares {}; DynamoDB turns TTL off and on at most once an hour: turn it off by hand, then provision again",
                decl.name,
                decl.ttl_attribute.as_deref().unwrap_or_default()
            )));
        }
        (Some(wanted), None) => (true, wanted.clone()),
        (None, Some(on)) => (false, on.clone()),
        (None, None) => return Ok(false),
    };
    let spec = TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attribute)
        .build()
        .map_err(|e| BusError::Topology(format!("ttl: {e}")))?;
    client
        .update_time_to_live()
        .table_name(&decl.name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| sdk_error(&decl.name, "UpdateTimeToLive", e))?;
    Ok(true)
}

async fn wait_active(client: &Client, name: &str) -> Result<(), BusError> {
    let started = Instant::now();
    loop {
        if let Some(t) = describe(client, name).await? {
            let table_active = t.table_status() == Some(&TableStatus::Active);
            let indexes_active = t
                .global_secondary_indexes()
                .iter()
                .all(|g| g.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table_active && indexes_active {
                return Ok(());
            }
        }
        if started.elapsed() > ACTIVE_WITHIN {
            return Err(BusError::Topology(format!(
                "table {name} did not become active within {} s",
                ACTIVE_WITHIN.as_secs()
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn existing_keys(schema: &[KeySchemaElement]) -> (String, Option<String>) {
    let find = |t: KeyType| {
        schema
            .iter()
            .find(|k| *k.key_type() == t)
            .map(|k| k.attribute_name().to_owned())
    };
    (
        find(KeyType::Hash).unwrap_or_default(),
        find(KeyType::Range),
    )
}

fn check_keys(
    table: &str,
    what: &str,
    existing: &(String, Option<String>),
    partition: &str,
    sort: Option<&str>,
) -> Result<(), BusError> {
    if existing.0 == partition && existing.1.as_deref() == sort {
        return Ok(());
    }
    let show = |p: &str, s: Option<&str>| s.map_or_else(|| p.to_owned(), |s| format!("{p}/{s}"));
    Err(BusError::Topology(format!(
        "table {table}: {what} has keys {} but the topology declares {}; keys cannot change in place: declare a new table or index and migrate",
        show(&existing.0, existing.1.as_deref()),
        show(partition, sort)
    )))
}

fn billing_of(t: &TableDescription) -> Billing {
    let on_demand = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .is_some_and(|m| *m == BillingMode::PayPerRequest);
    match t.provisioned_throughput() {
        Some(p) if !on_demand => Billing::Provisioned {
            read: u32::try_from(p.read_capacity_units().unwrap_or_default()).unwrap_or(u32::MAX),
            write: u32::try_from(p.write_capacity_units().unwrap_or_default()).unwrap_or(u32::MAX),
        },
        _ => Billing::PayPerRequest,
    }
}
