//! The DynamoDB idempotency store. Every call is one conditional write: a first delivery costs a
//! `PutItem` (claim) and an `UpdateItem` (complete); a duplicate costs one failed `PutItem`, whose
//! `ReturnValuesOnConditionCheckFailure = ALL_OLD` says why without a read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use fleet_bus::idempotency::{
    Claim, Claimed, Held, IdempotencyError, IdempotencyStore, STATUS_COMPLETED, STATUS_IN_PROGRESS,
};

use super::item::{self, KeyMode};

/// A claim takes the record when there is none, it has expired, or it is in progress for the
/// same payload and its lease has ended or this holder holds it: `Claim::admits`, for DynamoDB.
const CLAIM_CONDITION: &str = "attribute_not_exists(#id) OR #expiration < :now \
     OR (#validation = :validation AND #status = :in_progress \
         AND (#in_progress_expiration < :now_ms OR #holder = :holder))";
/// The same without takeover: a stale record stays with its holder (`Claim::takeover` false).
const CLAIM_NO_TAKEOVER_CONDITION: &str = "attribute_not_exists(#id) OR #expiration < :now \
     OR (#validation = :validation AND #status = :in_progress AND #holder = :holder)";
/// Only the holder completes; completing again changes nothing (an SDK retry after a lost answer).
const COMPLETE_CONDITION: &str = "#holder = :holder";
/// Only the holder releases, and only while in progress.
const RELEASE_CONDITION: &str = "#holder = :holder AND #status = :in_progress";

/// Idempotency records in DynamoDB, in a table of their own or in the single table.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
    mode: KeyMode,
}

impl DynamoIdempotencyStore {
    /// A store in `table`, keyed as `mode` says.
    pub fn new(client: Client, table: impl Into<String>, mode: KeyMode) -> Self {
        Self {
            client,
            table: table.into(),
            mode,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key mode.
    pub fn mode(&self) -> KeyMode {
        self.mode
    }
}

/// `#name` for every attribute an expression names (`status` and `data` are reserved words).
fn names(attrs: &[&str]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|a| (format!("#{a}"), (*a).to_owned()))
        .collect()
}

fn holder_value(held: &Held) -> (String, AttributeValue) {
    (":holder".to_owned(), item::text(held.holder.as_str()))
}

fn in_progress_value() -> (String, AttributeValue) {
    (":in_progress".to_owned(), item::text(STATUS_IN_PROGRESS))
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, IdempotencyError> {
        use item::{EXPIRATION, HOLDER, ID, IN_PROGRESS_EXPIRATION, STATUS, VALIDATION};
        let mut values = HashMap::from([
            (":now".to_owned(), item::n(claim.now_secs())),
            (":validation".to_owned(), item::text(&claim.validation)),
            in_progress_value(),
            holder_value(&claim.held()),
        ]);
        let mut names = vec![ID, EXPIRATION, VALIDATION, STATUS, HOLDER];
        // DynamoDB refuses names and values an expression does not use.
        if claim.takeover {
            values.insert(":now_ms".to_owned(), item::n(claim.now_ms));
            names.push(IN_PROGRESS_EXPIRATION);
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::to_item(&claim.record(), self.mode)))
            .condition_expression(if claim.takeover {
                CLAIM_CONDITION
            } else {
                CLAIM_NO_TAKEOVER_CONDITION
            })
            .set_expression_attribute_names(Some(self::names(&names)))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match put {
            Ok(_) => return Ok(Claimed::Acquired),
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        {
            let old = failed.item().ok_or_else(|| IdempotencyError::Malformed {
                key: claim.key.clone(),
                reason: "the claim was refused without the stored record".to_owned(),
            })?;
            return Ok(claim.refused_by(&item::from_item(&claim.key, old)?));
        }
        Err(store_error(&self.table, "PutItem", err))
    }

    async fn complete(
        &self,
        held: &Held,
        data: Option<&str>,
        expiration: u64,
    ) -> Result<(), IdempotencyError> {
        use item::{DATA, EXPIRATION, HOLDER, STATUS};
        let mut values = HashMap::from([
            (":completed".to_owned(), item::text(STATUS_COMPLETED)),
            (":expiration".to_owned(), item::n(expiration)),
            holder_value(held),
        ]);
        let update = match data {
            Some(data) => {
                values.insert(":data".to_owned(), item::text(data));
                "SET #status = :completed, #expiration = :expiration, #data = :data"
            }
            None => "SET #status = :completed, #expiration = :expiration REMOVE #data",
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.mode.key(&held.key)))
            .update_expression(update)
            .condition_expression(COMPLETE_CONDITION)
            .set_expression_attribute_names(Some(names(&[STATUS, EXPIRATION, DATA, HOLDER])))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        let err = match r {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                Err(IdempotencyError::NotHeld {
                    key: held.key.clone(),
                })
            }
            _ => Err(store_error(&self.table, "UpdateItem", err)),
        }
    }

    async fn release(&self, held: &Held) -> Result<(), IdempotencyError> {
        use item::{HOLDER, STATUS};
        let values = HashMap::from([holder_value(held), in_progress_value()]);
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.mode.key(&held.key)))
            .condition_expression(RELEASE_CONDITION)
            .set_expression_attribute_names(Some(names(&[HOLDER, STATUS])))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match r {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            // Nothing stored: released already (an SDK retry after a lost answer).
            Some(DeleteItemError::ConditionalCheckFailedException(f)) if f.item().is_none() => {
                Ok(())
            }
            Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                Err(IdempotencyError::NotHeld {
                    key: held.key.clone(),
                })
            }
            _ => Err(store_error(&self.table, "DeleteItem", err)),
        }
    }
}

/// An SDK failure as a store error: throttling, 5xx and network failures may pass
/// (`Unavailable`); everything else is a refusal (a missing table, a denied permission).
fn store_error<E>(
    table: &str,
    operation: &'static str,
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> IdempotencyError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let e = fleet_bus::aws::api_error(table, operation, e);
    if e.is_retryable() {
        IdempotencyError::Unavailable {
            source: Box::new(e),
        }
    } else {
        IdempotencyError::Refused {
            source: Box::new(e),
        }
    }
}
