//! Counting AWS calls by service and operation, from inside the SDK: an interceptor on every
//! client Fleet builds. What it counts is what AWS bills and what a role must allow: requests
//! (each attempt, the SDK's own retries included), operations, and failed operations.
//!
//! Each count goes to the `metrics` registry (`fleet_aws_requests_total`,
//! `fleet_aws_errors_total`, labelled `service` and `operation`) and to the [`AwsCalls`] itself,
//! which tests and `fleet` commands read directly.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use fleet_bus::aws::SqsTransport;

/// Requests sent to AWS (every attempt), by `service` and `operation`.
pub const AWS_REQUESTS: &str = "fleet_aws_requests_total";
/// Operations that failed after the SDK's retries, by `service` and `operation`.
pub const AWS_ERRORS: &str = "fleet_aws_errors_total";

/// What one operation cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Operations called (one per `send()`).
    pub calls: u64,
    /// HTTP requests sent: calls plus the SDK's retries.
    pub requests: u64,
    /// Operations that ended in an error.
    pub errors: u64,
}

/// Shared counts of AWS calls; clone it into every client builder.
#[derive(Clone, Debug, Default)]
pub struct AwsCalls {
    counts: Arc<Mutex<BTreeMap<(String, String), CallCount>>>,
}

impl AwsCalls {
    /// Empty counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation called so far, keyed by (service, operation), e.g. `("DynamoDB", "PutItem")`.
    pub fn snapshot(&self) -> BTreeMap<(String, String), CallCount> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The count of one operation of one service.
    pub fn get(&self, service: &str, operation: &str) -> CallCount {
        self.snapshot()
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Operations called on one service, summed over the named operations.
    pub fn calls_of(&self, service: &str, operations: &[&str]) -> u64 {
        operations
            .iter()
            .map(|op| self.get(service, op).calls)
            .sum()
    }

    fn record(&self, meta: &Metadata, f: impl FnOnce(&mut CallCount)) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (meta.service().to_owned(), meta.name().to_owned());
        f(counts.entry(key).or_default());
    }

    /// The interceptor to add to a client's configuration.
    pub fn interceptor(&self) -> CountingInterceptor {
        CountingInterceptor {
            calls: self.clone(),
        }
    }

    /// A DynamoDB client from `config` that counts its calls here.
    pub fn dynamodb_client(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.interceptor())
            .interceptor(crate::cost::units::UnitsInterceptor)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// An SES v2 client from `config` that counts its calls here.
    pub fn sesv2_client(&self, config: &SdkConfig) -> aws_sdk_sesv2::Client {
        let conf = aws_sdk_sesv2::config::Builder::from(config)
            .interceptor(self.interceptor())
            .build();
        aws_sdk_sesv2::Client::from_conf(conf)
    }

    /// An SSM client from `config` that counts its calls here.
    pub fn ssm_client(&self, config: &SdkConfig) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::config::Builder::from(config)
            .interceptor(self.interceptor())
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    /// The SQS and SNS transport from `config`, its clients counting their calls here.
    pub fn sqs_transport(&self, config: &SdkConfig) -> SqsTransport {
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .interceptor(self.interceptor())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(config)
            .interceptor(self.interceptor())
            .build();
        SqsTransport::from_clients(
            config,
            aws_sdk_sqs::Client::from_conf(sqs),
            aws_sdk_sns::Client::from_conf(sns),
        )
    }
}

impl fmt::Display for AwsCalls {
    /// One line per operation: `DynamoDB TransactWriteItems calls 12 requests 12 errors 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((service, op), c) in self.snapshot() {
            writeln!(
                f,
                "{service:<9} {op:<28} calls {:>6}  requests {:>6}  errors {:>4}",
                c.calls, c.requests, c.errors
            )?;
        }
        Ok(())
    }
}

/// The SDK interceptor behind [`AwsCalls`].
#[derive(Clone, Debug)]
pub struct CountingInterceptor {
    calls: AwsCalls,
}

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "fleet-aws-calls"
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.calls.record(meta, |c| c.requests += 1);
            metrics::counter!(AWS_REQUESTS, "service" => meta.service().to_owned(), "operation" => meta.name().to_owned()).increment(1);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let failed = matches!(context.output_or_error(), Some(Err(_)));
            self.calls.record(meta, |c| {
                c.calls += 1;
                c.errors += u64::from(failed);
            });
            if failed {
                metrics::counter!(AWS_ERRORS, "service" => meta.service().to_owned(), "operation" => meta.name().to_owned()).increment(1);
            }
        }
        Ok(())
    }
}
