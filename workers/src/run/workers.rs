//! Each worker's handler, built from the process's backends and configuration.

use std::sync::Arc;

use fleet_bus::BusError;
use fleet_bus::consumer::{Handler, PauseGate, Redactor};
use fleet_bus::idempotency::{IdempotencyStore, MemoryIdempotencyStore};

use super::backends::{Backends, Stores};
use super::config::{FleetConfig, MailerKind, WorkerKind};
use fleet_bus::producer::BatchProducer;

use crate::analytics::{
    AnalyticsWorker, CounterStore, DynamoCounterConfig, DynamoCounterStore, MemoryCounterStore,
};
use crate::email::smtp::SmtpError;
use crate::email::{EmailWorker, Mailer, MemoryMailer, SendRate, SesMailer, SmtpMailer, Templates};
use crate::idempotency::{DynamoIdempotencyStore, KeyMode};
use crate::orders::{DynamoOrderStore, MemoryOrderStore, OrderStore, OrdersWorker};
use crate::secrets::{SecretError, SecretSource, SsmSecrets, StaticSecrets};

/// The in-memory stores of an embedded run, kept so a caller (the demo) can read them.
#[derive(Default)]
pub struct MemoryStores {
    /// The orders worker's orders and outbox.
    pub orders: Arc<MemoryOrderStore>,
    /// The analytics worker's counters.
    pub counters: Arc<MemoryCounterStore>,
    /// The email worker's claims.
    pub idempotency: Arc<MemoryIdempotencyStore>,
}

/// One worker, ready for its consumer.
pub struct Worker {
    /// Its handler.
    pub handler: Handler,
    /// The gate it closes to pause its polling (the email worker, while the account cannot
    /// send).
    pub gate: Option<PauseGate>,
    /// What its error texts pass through before they are logged or dead-lettered.
    pub redact: Option<Redactor>,
}

impl From<Handler> for Worker {
    fn from(handler: Handler) -> Self {
        Self {
            handler,
            gate: None,
            redact: None,
        }
    }
}

/// Builds one worker.
///
/// # Errors
/// When the worker's publisher cannot be opened, or (email) its templates cannot be read or
/// its mailer cannot be built.
pub async fn worker_for(
    worker: WorkerKind,
    backends: &Backends,
    config: &FleetConfig,
) -> Result<Worker, BusError> {
    match worker {
        WorkerKind::Analytics => Ok(Handler::from(
            AnalyticsWorker::new(counter_store(backends, config)).handler(),
        )
        .into()),
        WorkerKind::Orders => {
            let topic = backends.transport.topic(&config.events_topic).await?;
            let events = BatchProducer::to_topic(&config.events_topic, topic);
            Ok(
                Handler::from(OrdersWorker::new(order_store(backends, config), events).handler())
                    .into(),
            )
        }
        WorkerKind::Email => email_worker(backends, config).await,
    }
}

async fn email_worker(backends: &Backends, config: &FleetConfig) -> Result<Worker, BusError> {
    let c = &config.email;
    let templates = Templates::load(&c.templates).map_err(|e| {
        BusError::Config(format!("email.templates: {}: {e}", c.templates.display()))
    })?;
    let mailer = mailer_for(backends, config).await?;
    let account = match mailer.account().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(mailer = mailer.name(), error = %e, rate_per_second = c.rate_per_second,
                "the provider's send quota could not be read: sending at the configured rate");
            crate::email::Account::default()
        }
    };
    let rate = Arc::new(SendRate::capped(
        c.rate_per_second,
        account.max_send_rate,
        c.burst,
    ));
    if let Some(max) = account.max_send_rate.filter(|m| *m < c.rate_per_second) {
        tracing::warn!(
            configured = c.rate_per_second,
            max_send_rate = max,
            "email.rate_per_second is above the account's MaxSendRate: sending at MaxSendRate"
        );
    }
    let topic = backends.transport.topic(&config.events_topic).await?;
    let events = BatchProducer::to_topic(&config.events_topic, topic);
    let gate = PauseGate::new();
    let worker = EmailWorker::new(
        Arc::new(templates),
        mailer,
        idempotency_store(backends, config),
        rate.clone(),
        events,
        gate.clone(),
        c.settings(),
    );
    if account.sending_enabled == Some(false) {
        worker.pause("the account's SendingEnabled is false");
    }
    tracing::info!(mailer = ?c.mailer, rate_per_second = rate.per_second(), burst = c.burst, sends_in_flight = c.sends_in_flight, "email worker ready");
    let redact: Redactor =
        Arc::new(|text: &str| crate::email::privacy::redact_addresses(text).into_owned());
    Ok(Worker {
        handler: Handler::from(worker.handler()),
        gate: Some(gate),
        redact: Some(redact),
    })
}

async fn mailer_for(
    backends: &Backends,
    config: &FleetConfig,
) -> Result<Arc<dyn Mailer>, BusError> {
    let c = &config.email;
    match c.mailer {
        MailerKind::Memory => Ok(match &c.memory_file {
            Some(path) => Arc::new(MemoryMailer::with_file(path)),
            None => backends.memory_mailer.clone(),
        }),
        MailerKind::Ses => {
            let aws = aws_clients(backends, "ses")?;
            Ok(Arc::new(SesMailer::new(aws.sesv2.clone(), c.ses.clone())))
        }
        MailerKind::Smtp => {
            let secrets: Arc<dyn SecretSource> = match (&c.smtp.password_parameter, &backends.aws) {
                (None, _) => Arc::new(StaticSecrets::default()),
                (Some(_), Some(aws)) => {
                    Arc::new(SsmSecrets::new(aws.ssm.clone()).with_ttl(c.secrets_ttl))
                }
                (Some(_), None) => {
                    return Err(BusError::Config(
                        "email.smtp.password_parameter: SSM needs transport = \"aws\"".to_owned(),
                    ));
                }
            };
            let mailer = SmtpMailer::new(c.smtp.clone(), secrets)
                .await
                .map_err(smtp_start_error)?;
            Ok(Arc::new(mailer))
        }
    }
}

/// Why the SMTP mailer could not be built, as a start error: SSM unable to answer now (the
/// network, throttling) is retryable, so `fleet run` tries its start again; anything else is a
/// configuration to fix.
fn smtp_start_error(e: SmtpError) -> BusError {
    match e {
        SmtpError::Secret(SecretError::Unavailable { name, detail }) => BusError::Api {
            resource: name,
            operation: "GetParameter",
            code: "SecretUnavailable".to_owned(),
            message: detail,
            retryable: true,
            source: None,
        },
        other => BusError::Config(format!("email.smtp: {other}")),
    }
}

fn aws_clients<'a>(
    backends: &'a Backends,
    mailer: &str,
) -> Result<&'a super::backends::AwsClients, BusError> {
    backends.aws.as_ref().ok_or_else(|| {
        BusError::Config(format!(
            "email.mailer = \"{mailer}\" needs transport = \"aws\" (use mailer = \"memory\" on the embedded transport)"
        ))
    })
}

fn idempotency_store(backends: &Backends, config: &FleetConfig) -> Arc<dyn IdempotencyStore> {
    match &backends.stores {
        Stores::Dynamo { client } => Arc::new(DynamoIdempotencyStore::new(
            client.clone(),
            config.table_of(WorkerKind::Email),
            KeyMode::SingleTable,
        )),
        Stores::Memory(m) => m.idempotency.clone(),
    }
}

fn counter_store(backends: &Backends, config: &FleetConfig) -> Arc<dyn CounterStore> {
    match &backends.stores {
        Stores::Dynamo { client } => Arc::new(DynamoCounterStore::new(
            client.clone(),
            DynamoCounterConfig {
                table: config.table_of(WorkerKind::Analytics).to_owned(),
                shards: config.analytics.counter_shards,
                dedup_ttl: config.analytics.dedup_ttl,
            },
        )),
        Stores::Memory(m) => m.counters.clone(),
    }
}

fn order_store(backends: &Backends, config: &FleetConfig) -> Arc<dyn OrderStore> {
    match &backends.stores {
        Stores::Dynamo { client } => Arc::new(DynamoOrderStore::new(
            client.clone(),
            config.table_of(WorkerKind::Orders),
        )),
        Stores::Memory(m) => m.orders.clone(),
    }
}
