//! `[observability]`: where `fleet run` serves `/metrics`, `/healthz` and `/readyz`, how it
//! judges readiness, how often it reads its queues' attributes, and where traces go.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The observability settings of `fleet run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served (one small HTTP server); unset:
    /// not served. Port 0 takes a free port, which the startup log line names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `/readyz` answers unready while a worker's receives have been failing for longer than
    /// this.
    #[serde(default = "unready_after", with = "humantime_serde")]
    pub unready_after: Duration,
    /// How often each worker's queue and dead-letter queue attributes are read for the queue
    /// gauges (visible, in flight, delayed) and the backlog.
    #[serde(default = "queue_stats_interval", with = "humantime_serde")]
    pub queue_stats_interval: Duration,
    /// The age of the oldest waiting message that operators accept; exported as
    /// `fleet_oldest_message_target_seconds` for the alert that compares the two.
    #[serde(default = "oldest_message_target", with = "humantime_serde")]
    pub oldest_message_target: Duration,
    /// Trace export.
    #[serde(default)]
    pub tracing: TracingConfig,
}

/// Where spans are exported. Trace context propagates and log lines carry `trace_id` whether or
/// not spans are exported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// An OTLP/HTTP endpoint (e.g. `http://otel-collector:4318`); unset: spans are not
    /// exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The OTLP/HTTP encoding.
    #[serde(default)]
    pub otlp_protocol: OtlpProtocol,
}

/// OTLP/HTTP encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// `application/x-protobuf` (what collectors expect by default).
    #[default]
    HttpProtobuf,
    /// `application/json`.
    HttpJson,
}

fn unready_after() -> Duration {
    Duration::from_secs(30)
}
fn queue_stats_interval() -> Duration {
    Duration::from_secs(15)
}
fn oldest_message_target() -> Duration {
    Duration::from_secs(300)
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            listen: None,
            unready_after: unready_after(),
            queue_stats_interval: queue_stats_interval(),
            oldest_message_target: oldest_message_target(),
            tracing: TracingConfig::default(),
        }
    }
}
