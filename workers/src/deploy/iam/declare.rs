//! What each worker's code issues, declared next to nothing else: the engine's operations (the
//! same for every worker), then each worker's store, publisher and mailer. A change to what a
//! worker calls changes this file, and the end-to-end tests (`workers/tests/iam_*.rs`) fail until
//! it does.

use super::{Permission, Resource};
use crate::deploy::{ExportContext, Platform};
use crate::run::config::MailerKind;
use crate::run::{FleetConfig, WorkerKind};
use crate::table::{GSI1, keys};

/// The template condition under which the queues use the stack's customer KMS key
/// (`QueueEncryption = kms`); the export defines it.
pub const USE_KMS: &str = "UseKms";

/// The SSM path a worker's secrets live under: `/fleet/<worker>` (its role reads nothing else).
pub fn ssm_path(worker: WorkerKind) -> String {
    format!("/fleet/{}", worker.as_str())
}

/// Every permission `worker`'s code needs, as `fleet run` configured by `ctx.config` issues it.
pub fn permissions(worker: WorkerKind, ctx: &ExportContext<'_>) -> Vec<Permission> {
    let config = ctx.config;
    let mut out = engine(worker, ctx);
    let table = config.table_of(worker).to_owned();
    // `fleet run`'s preflight describes the table of every worker it runs.
    out.push(Permission::new(
        "dynamodb:DescribeTable",
        Resource::Table(table.clone()),
    ));
    if ctx.platform == Platform::Ecs && config.ecs.task_protection {
        // `fleet run` asks the ECS agent (`run::protection`), which calls ECS's
        // UpdateTaskProtection with the task role's credentials.
        out.push(Permission::new(
            "ecs:UpdateTaskProtection",
            Resource::EcsTasks,
        ));
    }
    match worker {
        WorkerKind::Orders => {
            out.extend(orders_store(&table));
            out.extend(publisher(config));
        }
        WorkerKind::Analytics => out.extend(analytics_store(&table)),
        WorkerKind::Email => {
            out.extend(email_store(&table));
            out.extend(publisher(config));
            out.extend(mailer(config));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The engine's operations: resolve and describe the queue and its dead-letter queue (at
/// startup, and for the queue gauges), receive, delete, change visibility (retries, extensions,
/// releases), and send a dead letter with its reason. With the stack's KMS key, receiving needs
/// `kms:Decrypt` and sending `kms:GenerateDataKey` and `kms:Decrypt`, through SQS only.
fn engine(worker: WorkerKind, ctx: &ExportContext<'_>) -> Vec<Permission> {
    let queue = ctx.config.queue_of(worker).to_owned();
    let mut out: Vec<Permission> = [
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    ]
    .into_iter()
    .map(|a| Permission::new(a, Resource::Queue(queue.clone())))
    .collect();
    if let Some(dlq) = dead_letter_queue(worker, ctx) {
        out.extend(
            [
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:SendMessage",
            ]
            .into_iter()
            .map(|a| Permission::new(a, Resource::Queue(dlq.clone()))),
        );
    }
    out.extend(
        ["kms:Decrypt", "kms:GenerateDataKey"]
            .into_iter()
            .map(|a| Permission::new(a, Resource::KmsViaSqs).when(USE_KMS)),
    );
    out
}

/// Where the worker's dead letters go: the queue's redrive target in the topology, else the
/// consumer's configured `dead_letter_queue` (the engine's own order).
fn dead_letter_queue(worker: WorkerKind, ctx: &ExportContext<'_>) -> Option<String> {
    let queue = ctx.config.queue_of(worker);
    ctx.topology
        .queues
        .iter()
        .find(|q| q.name == queue)
        .and_then(|q| q.dead_letter.as_ref())
        .map(|d| d.queue.clone())
        .or_else(|| ctx.config.consumer_of(worker).dead_letter_queue)
}

/// A worker's queue with a `kms_key` of its own: `fleet provision`'s way to encrypt with an
/// existing key. In a stack, the roles may use only the stack's key (`QueueEncryption=kms`).
fn own_kms_keys(ctx: &ExportContext<'_>) -> Result<(), String> {
    for worker in ctx.workers() {
        let mut names = vec![ctx.config.queue_of(worker).to_owned()];
        names.extend(dead_letter_queue(worker, ctx));
        for q in ctx
            .topology
            .queues
            .iter()
            .filter(|q| names.contains(&q.name))
        {
            if let Some(key) = &q.kms_key {
                return Err(format!(
                    "queue {}: kms_key {key} is for fleet provision; the exported roles are granted the stack's own key only, so export with the template's QueueEncryption=kms instead (remove kms_key from the topology used for the export)",
                    q.name
                ));
            }
        }
    }
    Ok(())
}

/// `<prefix>*`: the `dynamodb:LeadingKeys` pattern of the items whose keys begin with a prefix
/// built by [`crate::table::keys`].
fn pattern(prefix: String) -> String {
    prefix + "*"
}

/// The pattern of one partition-key value: its item kind's prefix (the longest of Fleet's key
/// prefixes it begins with) and `*`, or the value up to its first `#` and `*` for a key of no
/// known kind. The recorder of issued actions names each key this way.
pub fn leading_key_pattern(value: &str) -> String {
    let known = [
        keys::customer_pk(""),
        keys::order_guard_pk(""),
        keys::idempotency_pk(crate::email::worker::KEY_PREFIX),
        keys::idempotency_pk(""),
        keys::analytics_event_pk(""),
        keys::counter_pk(""),
    ];
    let longest = known
        .iter()
        .filter(|p| value.starts_with(p.as_str()))
        .max_by_key(|p| p.len());
    match (longest, value.find('#')) {
        (Some(p), _) => pattern(p.clone()),
        (None, Some(i)) => pattern(value[..=i].to_owned()),
        (None, None) => value.to_owned(),
    }
}

/// The orders store (`orders/dynamo.rs`): an order by id through `GSI1`, a customer's outbox by
/// a consistent `Query`, each change one `TransactWriteItems` of puts (the order, the id's guard
/// item, the outbox rows), and the published rows deleted by `BatchWriteItem`.
fn orders_store(table: &str) -> Vec<Permission> {
    let customer = pattern(keys::customer_pk(""));
    let guard = pattern(keys::order_guard_pk(""));
    vec![
        Permission::new(
            "dynamodb:Query",
            Resource::Index {
                table: table.to_owned(),
                index: GSI1.to_owned(),
            },
        )
        .leading_keys(&[pattern(keys::order_gsi1pk(""))]),
        Permission::new("dynamodb:Query", Resource::Table(table.to_owned()))
            .leading_keys(std::slice::from_ref(&customer)),
        Permission::new("dynamodb:PutItem", Resource::Table(table.to_owned()))
            .leading_keys(&[customer.clone(), guard]),
        Permission::new("dynamodb:BatchWriteItem", Resource::Table(table.to_owned()))
            .leading_keys(&[customer]),
    ]
}

/// The analytics counters (`analytics/dynamo.rs`): one `TransactWriteItems` per batch, a
/// conditional put of each event's deduplication item and an `ADD` to each counter shard.
fn analytics_store(table: &str) -> Vec<Permission> {
    vec![
        Permission::new("dynamodb:PutItem", Resource::Table(table.to_owned()))
            .leading_keys(&[pattern(keys::analytics_event_pk(""))]),
        Permission::new("dynamodb:UpdateItem", Resource::Table(table.to_owned()))
            .leading_keys(&[pattern(keys::counter_pk(""))]),
    ]
}

/// The email worker's claims (`idempotency/dynamo.rs`, single-table keys): claim with a
/// conditional put, mark sent with an update, release after a failed send with a delete.
fn email_store(table: &str) -> Vec<Permission> {
    let claims = [pattern(keys::idempotency_pk(
        crate::email::worker::KEY_PREFIX,
    ))];
    [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ]
    .into_iter()
    .map(|a| Permission::new(a, Resource::Table(table.to_owned())).leading_keys(&claims))
    .collect()
}

/// The events topic: opened by ARN (one `GetTopicAttributes`), then `PublishBatch`.
fn publisher(config: &FleetConfig) -> Vec<Permission> {
    ["sns:GetTopicAttributes", "sns:Publish"]
        .into_iter()
        .map(|a| Permission::new(a, Resource::Topic(config.events_topic.clone())))
        .collect()
}

/// The mailer: SES v2 `SendEmail` from the sender's identity (and its configuration set) and
/// `GetAccount` at startup (the send quota; AWS allows it on `*` only); SMTP reads its password
/// from an SSM `SecureString` under `/fleet/email`, which SSM decrypts with KMS on its behalf.
fn mailer(config: &FleetConfig) -> Vec<Permission> {
    let email = &config.email;
    match email.mailer {
        MailerKind::Ses => {
            let mut out = vec![
                Permission::new(
                    "ses:SendEmail",
                    Resource::SesIdentity(sender_address(&email.from)),
                ),
                Permission::new("ses:GetAccount", Resource::Any),
            ];
            if let Some(set) = &email.ses.configuration_set {
                out.push(Permission::new(
                    "ses:SendEmail",
                    Resource::SesConfigurationSet(set.clone()),
                ));
            }
            out
        }
        MailerKind::Smtp if email.smtp.password_parameter.is_some() => {
            let path = ssm_path(WorkerKind::Email);
            vec![
                Permission::new("ssm:GetParameter", Resource::Parameters(path.clone())),
                Permission::new("kms:Decrypt", Resource::KmsViaSsm(path)),
            ]
        }
        MailerKind::Smtp | MailerKind::Memory => Vec::new(),
    }
}

/// Refuses a configuration the derived roles would not cover: a worker's queue or dead-letter
/// queue under its own `kms_key` (the roles are granted the stack's `QueueKey` only), or the SMTP
/// password parameter outside the email worker's path (its role reads only `/fleet/email/*`;
/// `fleet run` would be refused at its first send).
///
/// # Errors
/// The setting at fault and the path it must be under.
pub fn check(ctx: &ExportContext<'_>) -> Result<(), String> {
    own_kms_keys(ctx)?;
    let email = &ctx.config.email;
    let Some(parameter) = &email.smtp.password_parameter else {
        return Ok(());
    };
    let path = ssm_path(WorkerKind::Email);
    let used = ctx.workers().contains(&WorkerKind::Email) && email.mailer == MailerKind::Smtp;
    if used && !Resource::Parameters(path.clone()).covers(&Resource::Parameters(parameter.clone()))
    {
        return Err(format!(
            "email.smtp.password_parameter: {parameter} is outside {path}/, the only parameters the email worker's role may read; move it under {path}/"
        ));
    }
    Ok(())
}

/// The address of `Name <address>` (or of a bare address), as SES names the identity.
pub fn sender_address(from: &str) -> String {
    match from.parse::<lettre::message::Mailbox>() {
        Ok(m) => m.email.to_string(),
        Err(_) => from.trim().to_owned(),
    }
}
