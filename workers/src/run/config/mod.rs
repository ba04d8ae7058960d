//! `fleet run`'s configuration: one TOML file (`deploy/fleet.toml`), checked strictly (an unknown
//! key is an error naming the key), with environment overrides on top.
//!
//! An override is a variable named `FLEET__` followed by the key's path in upper case, its parts
//! joined by `__`: `FLEET__ORDERS__CONSUMER__CONCURRENCY=32` sets `[orders.consumer]
//! concurrency`. The value is read as a TOML value (`32`, `true`, `"text"`), or as a string when
//! it is not one (`20s`, `fleet-prod`). The double underscore keeps `FLEET_LOG` and other
//! single-underscore variables out.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_bus::ConsumerConfig;
use serde::{Deserialize, Serialize};

mod ecs;
mod observability;
pub use ecs::EcsConfig;
pub use observability::{ObservabilityConfig, OtlpProtocol, TracingConfig};

/// The prefix of every override variable.
pub const ENV_PREFIX: &str = "FLEET__";
/// Where `fleet run` looks for its configuration by default.
pub const DEFAULT_CONFIG: &str = "deploy/fleet.toml";

/// Everything `fleet run` needs to know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Where the queues are: AWS (default) or the in-process embedded transport.
    #[serde(default)]
    pub transport: TransportKind,
    /// The topology file that declares the queues, topics and table (relative paths are
    /// relative to the configuration file).
    #[serde(default = "default_topology")]
    pub topology: PathBuf,
    /// The single DynamoDB table.
    #[serde(default = "default_table")]
    pub table: String,
    /// The topic the workers publish their downstream events to.
    #[serde(default = "default_topic")]
    pub events_topic: String,
    /// How long a drain may take, for every worker at once; it replaces the consumers' own
    /// `shutdown_timeout`. The whole stop takes at most this plus 8 s (1 s for the settlers'
    /// reports, 2 s to release ECS task protection, 5 s to export the last spans): keep the
    /// platform's kill timeout (ECS `stopTimeout`, systemd `TimeoutStopSec`) above that.
    #[serde(default = "default_shutdown", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The orders worker.
    #[serde(default = "OrdersConfig::default")]
    pub orders: OrdersConfig,
    /// The analytics worker.
    #[serde(default = "AnalyticsConfig::default")]
    pub analytics: AnalyticsConfig,
    /// The email worker.
    #[serde(default = "EmailConfig::default")]
    pub email: EmailConfig,
    /// Metrics, health and readiness endpoints, and trace export.
    #[serde(default)]
    pub observability: ObservabilityConfig,
    /// Inside an ECS task: task scale-in protection.
    #[serde(default)]
    pub ecs: EcsConfig,
}

/// Which mailer the email worker sends through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailerKind {
    /// Amazon SES v2 `SendEmail`, through the process's AWS configuration.
    #[default]
    Ses,
    /// An SMTP server through lettre (`[email.smtp]`), its password from SSM.
    Smtp,
    /// Nowhere: kept in memory, and appended to `memory_file` when set (`fleet demo`, local
    /// runs on the embedded transport).
    Memory,
}

/// The email worker's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether `fleet run` without `--worker` runs it: off unless the configuration says so,
    /// since it needs a sender the provider has verified (`from`).
    #[serde(default)]
    pub enabled: bool,
    /// Its queue (it consumes `email.requested`).
    #[serde(default = "email_queue")]
    pub queue: String,
    /// The sender, `Name <address>` or an address (verified with the provider).
    #[serde(default = "email_from")]
    pub from: String,
    /// The template directories (relative paths are relative to the configuration file).
    #[serde(default = "email_templates")]
    pub templates: PathBuf,
    /// `ses`, `smtp` or `memory`.
    #[serde(default)]
    pub mailer: MailerKind,
    /// With the memory mailer, a file every sent email is appended to as a JSON line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_file: Option<PathBuf>,
    /// Sends per second at most, per process (with SES, never above the account's
    /// `MaxSendRate`).
    #[serde(default = "email_rate")]
    pub rate_per_second: f64,
    /// Sends at once beyond the rate: in any window of t seconds, at most
    /// `rate_per_second × t + burst` sends.
    #[serde(default = "one")]
    pub burst: u32,
    /// Sends (claim, send, mark) in flight at once per process. A crash can leave at most this
    /// many requests `delivery_unknown`; more sends in flight means more throughput when the
    /// provider is slow.
    #[serde(default = "one_usize")]
    pub sends_in_flight: usize,
    /// How long a claim holds a request while it is sent and marked; longer than the mailer's
    /// send timeout, shorter than the queue's visibility timeout.
    #[serde(default = "email_claim_lease", with = "humantime_serde")]
    pub claim_lease: Duration,
    /// How long a sent request is remembered: longer than the queue's retention (14 days).
    #[serde(default = "default_dedup_ttl", with = "humantime_serde")]
    pub keep_sent_for: Duration,
    /// When the provider says the account cannot send, polling pauses this long before the next
    /// message tries again.
    #[serde(default = "email_pause_probe", with = "humantime_serde")]
    pub pause_probe: Duration,
    /// How long a secret read from SSM is used before it is read again.
    #[serde(default = "email_secrets_ttl", with = "humantime_serde")]
    pub secrets_ttl: Duration,
    /// SES v2 settings (`mailer = "ses"`).
    #[serde(default)]
    pub ses: crate::email::SesSettings,
    /// SMTP settings (`mailer = "smtp"`); the password comes from SSM (`password_parameter`).
    #[serde(default)]
    pub smtp: crate::email::SmtpSettings,
    /// Its consumer.
    #[serde(default = "email_consumer")]
    pub consumer: ConsumerConfig,
}

/// Which transport `fleet run` consumes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// SQS, SNS and DynamoDB through the AWS SDK: the standard credential chain, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`.
    #[default]
    Aws,
    /// The in-process transport with in-memory stores: for local runs, nothing leaves the
    /// process.
    Embedded,
}

/// The orders worker's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersConfig {
    /// Whether `fleet run` without `--worker` runs it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its queue.
    #[serde(default = "orders_queue")]
    pub queue: String,
    /// Its consumer: pollers, concurrency, retries (see the engine's `ConsumerConfig`).
    #[serde(default = "orders_consumer")]
    pub consumer: ConsumerConfig,
}

/// The analytics worker's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Whether `fleet run` without `--worker` runs it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its queue.
    #[serde(default = "analytics_queue")]
    pub queue: String,
    /// The table of its counters and deduplication items: the single table (`table`) unless
    /// set. A table of its own keeps its write capacity apart (and, on moto, which does not
    /// isolate concurrent transactions, keeps its cancelled transactions from rolling back the
    /// orders' writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Shards per counter: one batch writes one shard, readers sum them.
    #[serde(default = "default_shards")]
    pub counter_shards: u32,
    /// How long an event's deduplication item lives: longer than the queue's retention, so a
    /// redelivered event always finds it.
    #[serde(default = "default_dedup_ttl", with = "humantime_serde")]
    pub dedup_ttl: Duration,
    /// Its consumer (a batch handler: each receive's messages are one batch).
    #[serde(default = "analytics_consumer")]
    pub consumer: ConsumerConfig,
}

fn yes() -> bool {
    true
}
fn default_topology() -> PathBuf {
    PathBuf::from("topology.toml")
}
fn default_table() -> String {
    crate::table::DEFAULT_TABLE.to_owned()
}
fn default_topic() -> String {
    "fleet-events".to_owned()
}
fn default_shutdown() -> Duration {
    Duration::from_secs(25)
}
fn orders_queue() -> String {
    "fleet-orders".to_owned()
}
fn analytics_queue() -> String {
    "fleet-analytics".to_owned()
}
fn email_queue() -> String {
    "fleet-email".to_owned()
}
fn email_from() -> String {
    "Fleet <no-reply@example.com>".to_owned()
}
fn email_templates() -> PathBuf {
    PathBuf::from("templates")
}
fn email_rate() -> f64 {
    10.0
}
fn one() -> u32 {
    1
}
fn one_usize() -> usize {
    1
}
fn email_claim_lease() -> Duration {
    Duration::from_secs(45)
}
fn email_pause_probe() -> Duration {
    Duration::from_secs(60)
}
fn email_secrets_ttl() -> Duration {
    Duration::from_secs(300)
}
fn email_consumer() -> ConsumerConfig {
    ConsumerConfig {
        concurrency: Some(10),
        ..named_consumer("email")
    }
}
fn default_shards() -> u32 {
    4
}
fn default_dedup_ttl() -> Duration {
    // SQS keeps a message at most 14 days.
    Duration::from_secs(15 * 24 * 3600)
}
fn named_consumer(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        handler_name: name.to_owned(),
        ..ConsumerConfig::default()
    }
}
fn orders_consumer() -> ConsumerConfig {
    named_consumer("orders")
}
fn analytics_consumer() -> ConsumerConfig {
    named_consumer("analytics")
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue: orders_queue(),
            consumer: orders_consumer(),
        }
    }
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue: analytics_queue(),
            table: None,
            counter_shards: default_shards(),
            dedup_ttl: default_dedup_ttl(),
            consumer: analytics_consumer(),
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            queue: email_queue(),
            from: email_from(),
            templates: email_templates(),
            mailer: MailerKind::default(),
            memory_file: None,
            rate_per_second: email_rate(),
            burst: one(),
            sends_in_flight: one_usize(),
            claim_lease: email_claim_lease(),
            keep_sent_for: default_dedup_ttl(),
            pause_probe: email_pause_probe(),
            secrets_ttl: email_secrets_ttl(),
            ses: crate::email::SesSettings::default(),
            smtp: crate::email::SmtpSettings::default(),
            consumer: email_consumer(),
        }
    }
}

impl EmailConfig {
    /// What the worker itself needs.
    pub fn settings(&self) -> crate::email::EmailSettings {
        crate::email::EmailSettings {
            from: self.from.clone(),
            claim_lease: self.claim_lease,
            keep_sent_for: self.keep_sent_for,
            sends_in_flight: self.sends_in_flight,
            pause_probe: self.pause_probe,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// The parser's message, with the line and the key.
        message: String,
    },
    /// An override variable names an unknown key or has a value of the wrong type.
    #[error("{message}")]
    Override {
        /// What is wrong, naming the variable and the key.
        message: String,
    },
    /// A setting that cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// A configuration as `fleet run` uses it: the file's settings with the overrides applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// The settings.
    pub config: FleetConfig,
    /// The overrides applied: (variable, key path).
    pub overrides: Vec<(String, String)>,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
}

impl Effective {
    /// Reads `path` (or the defaults when `path` is `None`), applies the `FLEET__` variables of
    /// `env`, and checks the result.
    ///
    /// # Errors
    /// When the file cannot be read, a key is unknown or mistyped (named in the message, with
    /// the variable it came from), or a setting cannot work.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, shown) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "<defaults>".to_owned()),
        };
        // The file alone first, so its errors carry its line numbers.
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        // Parsed from the text (not the table) so an unknown key is shown at its line.
        toml::from_str::<FleetConfig>(&text).map_err(|e| ConfigError::File {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let overrides = apply_overrides(&mut table, env)?;
        let mut config: FleetConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
            let key = e.path().to_string();
            let from = overrides
                .iter()
                .find(|(_, k)| k.starts_with(&key) || key.starts_with(k.as_str()))
                .map(|(var, _)| format!(" (from {var})"))
                .unwrap_or_default();
            ConfigError::Override {
                message: format!("{key}: {}{from}", e.inner()),
            }
        })?;
        if let Some(dir) = path.and_then(Path::parent) {
            for p in [
                Some(&mut config.topology),
                Some(&mut config.email.templates),
                config.email.memory_file.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        config.validate()?;
        Ok(Self {
            config,
            overrides,
            path: path.map(Path::to_path_buf),
        })
    }
}

/// Sets each `FLEET__A__B=v` at `a.b` of `table`; returns (variable, key path) of each.
fn apply_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    let mut applied = Vec::new();
    for (var, raw) in std::mem::take(&mut vars) {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Override {
                message: format!("{var}: an override names a key as FLEET__SECTION__KEY"),
            });
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let (last, parents) = path.split_last().expect("split gives at least one part");
        let mut at = &mut *table;
        for part in parents {
            let entry = at
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = entry.as_table_mut().ok_or_else(|| ConfigError::Override {
                message: format!("{var}: {part} is not a section"),
            })?;
        }
        at.insert(last.clone(), value);
        applied.push((var, path.join(".")));
    }
    Ok(applied)
}

impl FleetConfig {
    /// Rejects settings that cannot work, naming the key.
    ///
    /// # Errors
    /// `Invalid` with the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (key, value) in [
            ("table", &self.table),
            ("events_topic", &self.events_topic),
            ("orders.queue", &self.orders.queue),
            ("analytics.queue", &self.analytics.queue),
            ("email.queue", &self.email.queue),
            ("email.from", &self.email.from),
        ] {
            if value.trim().is_empty() {
                return bad(format!("{key}: must not be empty"));
            }
        }
        if self.shutdown_timeout < Duration::from_secs(1) {
            return bad("shutdown_timeout: at least 1s".to_owned());
        }
        if let Some(problem) = self.ecs.problem() {
            return bad(problem);
        }
        if !(1..=100).contains(&self.analytics.counter_shards) {
            return bad("analytics.counter_shards: 1 to 100".to_owned());
        }
        if self.analytics.dedup_ttl <= Duration::from_secs(14 * 24 * 3600) {
            return bad(
                "analytics.dedup_ttl: must outlive the queue's retention (SQS keeps a message up to 14 days): more than 14d".to_owned(),
            );
        }
        let e = &self.email;
        if !(e.rate_per_second.is_finite() && e.rate_per_second > 0.0) {
            return bad("email.rate_per_second: a positive number of sends per second".to_owned());
        }
        if let Err(err) = e.from.parse::<lettre::message::Mailbox>() {
            return bad(format!(
                "email.from: {:?} is not a mailbox (`Name <address>` or an address): {err}",
                e.from
            ));
        }
        if e.mailer == MailerKind::Ses && e.claim_lease <= e.ses.send_timeout {
            return bad(format!(
                "email.claim_lease: must be longer than email.ses.send_timeout ({}), so a claim outlives its send",
                humantime::format_duration(e.ses.send_timeout)
            ));
        }
        if e.burst == 0 || e.sends_in_flight == 0 {
            return bad("email.burst and email.sends_in_flight: at least 1".to_owned());
        }
        if e.keep_sent_for <= Duration::from_secs(14 * 24 * 3600) {
            return bad(
                "email.keep_sent_for: must outlive the queue's retention (SQS keeps a message up to 14 days): more than 14d".to_owned(),
            );
        }
        if e.claim_lease < Duration::from_secs(2) {
            return bad("email.claim_lease: at least 2s".to_owned());
        }
        if e.mailer == MailerKind::Smtp {
            if let Err(err) = e.smtp.validate() {
                return bad(format!("email.smtp.{err}"));
            }
            if e.claim_lease <= e.smtp.send_timeout {
                return bad(format!(
                    "email.claim_lease: must be longer than email.smtp.send_timeout ({}), so a claim outlives its send",
                    humantime::format_duration(e.smtp.send_timeout)
                ));
            }
        }
        if e.memory_file.is_some() && e.mailer != MailerKind::Memory {
            return bad("email.memory_file: only with mailer = \"memory\"".to_owned());
        }
        let default_drain = ConsumerConfig::default().shutdown_timeout;
        for (key, own) in [
            ("orders.consumer", &self.orders.consumer),
            ("analytics.consumer", &self.analytics.consumer),
            ("email.consumer", &self.email.consumer),
        ] {
            if own.shutdown_timeout != default_drain
                && own.shutdown_timeout != self.shutdown_timeout
            {
                return bad(format!(
                    "{key}.shutdown_timeout: the drain deadline is one for the whole process; set the top-level shutdown_timeout instead"
                ));
            }
        }
        for (key, consumer) in [
            ("orders.consumer", self.consumer_of(WorkerKind::Orders)),
            (
                "analytics.consumer",
                self.consumer_of(WorkerKind::Analytics),
            ),
            ("email.consumer", self.consumer_of(WorkerKind::Email)),
        ] {
            if let Err(e) = consumer.validate() {
                return bad(format!("{key}: {e}"));
            }
        }
        Ok(())
    }

    /// The consumer settings a worker runs with: its own, with the process's shutdown deadline.
    pub fn consumer_of(&self, worker: WorkerKind) -> ConsumerConfig {
        let mut c = match worker {
            WorkerKind::Orders => self.orders.consumer.clone(),
            WorkerKind::Analytics => self.analytics.consumer.clone(),
            WorkerKind::Email => self.email.consumer.clone(),
        };
        c.shutdown_timeout = self.shutdown_timeout;
        if c.handler_name == ConsumerConfig::default().handler_name {
            // Dead-letter reasons name the worker unless the configuration says otherwise.
            worker.as_str().clone_into(&mut c.handler_name);
        }
        c
    }

    /// The table a worker keeps its state in.
    pub fn table_of(&self, worker: WorkerKind) -> &str {
        match worker {
            WorkerKind::Analytics => self.analytics.table.as_deref().unwrap_or(&self.table),
            WorkerKind::Orders | WorkerKind::Email => &self.table,
        }
    }

    /// A worker's queue.
    pub fn queue_of(&self, worker: WorkerKind) -> &str {
        match worker {
            WorkerKind::Orders => &self.orders.queue,
            WorkerKind::Analytics => &self.analytics.queue,
            WorkerKind::Email => &self.email.queue,
        }
    }

    /// The workers to run: those named, or else every enabled one.
    pub fn chosen(&self, named: &[WorkerKind]) -> Vec<WorkerKind> {
        if !named.is_empty() {
            let mut out = named.to_vec();
            out.sort_unstable();
            out.dedup();
            return out;
        }
        WorkerKind::ALL
            .into_iter()
            .filter(|w| match w {
                WorkerKind::Orders => self.orders.enabled,
                WorkerKind::Analytics => self.analytics.enabled,
                WorkerKind::Email => self.email.enabled,
            })
            .collect()
    }
}

/// The workers `fleet run` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum WorkerKind {
    /// Order events into the single table, downstream events through an outbox.
    Orders,
    /// Counters per event name, time bucket, subject, and revenue.
    Analytics,
    /// Email requests rendered and sent once, through SES, SMTP or memory.
    Email,
}

impl WorkerKind {
    /// Every worker.
    pub const ALL: [WorkerKind; 3] = [WorkerKind::Orders, WorkerKind::Analytics, WorkerKind::Email];

    /// Its name in configuration, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerKind::Orders => "orders",
            WorkerKind::Analytics => "analytics",
            WorkerKind::Email => "email",
        }
    }
}

impl fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret setting (a password, a token): used as is, printed as `<redacted>` by
/// `fleet config check` and `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl fmt::Display for Effective {
    /// The effective configuration as TOML, each override named in a comment first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => writeln!(f, "# from {}", p.display())?,
            None => writeln!(f, "# no configuration file: defaults")?,
        }
        for (var, key) in &self.overrides {
            writeln!(f, "# {key} set by {var}")?;
        }
        let text = toml::to_string(&self.config).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests;
