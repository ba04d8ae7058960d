//! The production transport: SQS queues and SNS topics through the AWS SDK for Rust.
//!
//! One [`SqsTransport`] holds one SQS and one SNS client built from one shared `aws-config`
//! (the standard credential chain; `AWS_ENDPOINT_URL` and the other endpoint overrides work).
//! Clone it freely: clones share the clients and their connection pools.
//!
//! A topic is opened by its ARN, never by listing topics (which needs `sns:ListTopics` on `*` and
//! takes one call per hundred topics): a name is completed with the configured region and the
//! caller's account (`sts:GetCallerIdentity`, which needs no permission, asked once per
//! transport), a full ARN is taken as it is, and one `sns:GetTopicAttributes` checks the topic
//! exists.

mod convert;
mod error;
mod policy;
mod provision;
mod queue;
mod resource_policy;
#[cfg(feature = "dynamodb")]
pub mod table;
mod topic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName as Q;
use tokio::sync::OnceCell;

pub use error::sdk_error as api_error;

/// How long connecting may take (the SDK's own default since behavior version 2023-11-09).
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3_100);
/// How long one attempt of a call may take before the SDK gives up on it and retries. The SDK
/// sets no such limit by default, so a connection that stalls (a half-open TCP connection, a
/// middlebox that swallows packets) would hold a call, and the message it settles, forever. A
/// long poll gets its wait on top ([`receive_attempt_timeout`]).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The timeouts of every AWS client Fleet builds: [`CONNECT_TIMEOUT`] and [`ATTEMPT_TIMEOUT`].
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// The attempt timeout of a `ReceiveMessage` that waits up to `wait`: the wait, plus
/// [`ATTEMPT_TIMEOUT`] for the call itself.
pub fn receive_attempt_timeout(wait: std::time::Duration) -> std::time::Duration {
    wait + ATTEMPT_TIMEOUT
}

/// `aws-config`'s loader from the environment (credential chain, region, `AWS_ENDPOINT_URL`),
/// with Fleet's [`timeouts`]: what every AWS client of `fleet` is built from.
///
/// The SDK's stalled-stream protection is off: every attempt is already bounded by
/// [`ATTEMPT_TIMEOUT`] (a long poll by [`receive_attempt_timeout`]), body included, and the
/// protection's throughput checks cost about a sixth of a consumer's CPU on SQS
/// (`scripts/bench`, benches/README.md).
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
}
pub use queue::SqsQueue;
pub use topic::SnsTopic;

use crate::error::BusError;
use crate::topology::Declaration;
use crate::transport::{Applied, Publisher, QueueHandle, Transport};
use error::{is_missing_queue, sdk_error};

/// SQS and SNS through the AWS SDK.
#[derive(Clone, Debug)]
pub struct SqsTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    sts: aws_sdk_sts::Client,
    /// The configured region, the middle of every topic ARN.
    region: Option<String>,
    /// The caller's partition and account, asked once.
    caller: OnceCell<Caller>,
    /// Topic ARNs by name, so a topic is looked up once.
    topics: Mutex<HashMap<String, String>>,
}

/// Where the credentials belong: the partition (`aws`, `aws-cn`, ...) and the account id.
#[derive(Debug)]
struct Caller {
    partition: String,
    account: String,
}

impl SqsTransport {
    /// Builds both clients from one SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::from_clients(
            config,
            aws_sdk_sqs::Client::new(config),
            aws_sdk_sns::Client::new(config),
        )
    }

    /// Uses clients built by the caller (with interceptors, say, that count calls); `config`
    /// gives the region and the credentials used to learn the account for topic ARNs.
    pub fn from_clients(
        config: &aws_config::SdkConfig,
        sqs: aws_sdk_sqs::Client,
        sns: aws_sdk_sns::Client,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sqs,
                sns,
                sts: aws_sdk_sts::Client::new(config),
                region: config.region().map(ToString::to_string),
                caller: OnceCell::new(),
                topics: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Builds both clients from the environment: the standard credential chain, region and
    /// endpoint overrides such as `AWS_ENDPOINT_URL`, with [`timeouts`].
    pub async fn from_env() -> Self {
        let config = config_loader().load().await;
        Self::new(&config)
    }

    /// The SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.inner.sqs
    }

    /// The SNS client.
    pub fn sns(&self) -> &aws_sdk_sns::Client {
        &self.inner.sns
    }

    fn sqs_queue(&self, name: &str, url: &str) -> SqsQueue {
        SqsQueue::new(self.inner.sqs.clone(), name, url)
    }

    /// The queue's URL, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the call fails for another reason.
    pub async fn queue_url(&self, name: &str) -> Result<Option<String>, BusError> {
        match self.sqs().get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url().map(str::to_owned)),
            Err(e) => {
                let e = sdk_error(name, "GetQueueUrl", e);
                if is_missing_queue(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn remember_topic(&self, name: &str, arn: &str) {
        self.inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), arn.to_owned());
    }

    /// The topic's ARN, or `None` when it does not exist. `name` is a topic name (completed with
    /// the region and the caller's account) or a full topic ARN.
    ///
    /// # Errors
    /// When no region is configured, or `GetCallerIdentity` or `GetTopicAttributes` fails for
    /// another reason than a missing topic.
    pub async fn topic_arn(&self, name: &str) -> Result<Option<String>, BusError> {
        if let Some(arn) = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Ok(Some(arn.clone()));
        }
        let arn = if name.starts_with("arn:") {
            name.to_owned()
        } else {
            let caller = self.caller(name).await?;
            let region = self.inner.region.as_deref().ok_or_else(|| {
                BusError::Config(
                    "no AWS region is configured: set AWS_REGION or the profile's region"
                        .to_owned(),
                )
            })?;
            format!(
                "arn:{}:sns:{region}:{}:{name}",
                caller.partition, caller.account
            )
        };
        let checked = self
            .sns()
            .get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await;
        match checked {
            Ok(_) => {
                self.remember_topic(name, &arn);
                Ok(Some(arn))
            }
            Err(e) => match sdk_error(name, "GetTopicAttributes", e) {
                e if e.code() == Some("NotFound") => Ok(None),
                e => Err(e),
            },
        }
    }

    /// The caller's partition and account, asked once per transport (`name` is what it is for,
    /// for the error).
    async fn caller(&self, name: &str) -> Result<&Caller, BusError> {
        self.inner
            .caller
            .get_or_try_init(|| async {
                let out = self
                    .inner
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| sdk_error(name, "GetCallerIdentity", e))?;
                let missing = || BusError::Api {
                    resource: name.to_owned(),
                    operation: "GetCallerIdentity",
                    code: "UnparseableResponse".to_owned(),
                    message: "the answer has no account or ARN".to_owned(),
                    retryable: false,
                    source: None,
                };
                let account = out.account().ok_or_else(missing)?.to_owned();
                let partition = out
                    .arn()
                    .and_then(|arn| arn.split(':').nth(1))
                    .ok_or_else(missing)?
                    .to_owned();
                Ok(Caller { partition, account })
            })
            .await
    }
}

#[async_trait]
impl Transport for SqsTransport {
    async fn declare(&self, declaration: &Declaration<'_>) -> Result<Applied, BusError> {
        match declaration {
            Declaration::Queue(q) => {
                crate::topology::Topology {
                    queues: vec![(*q).clone()],
                    topics: vec![],
                    ..Default::default()
                }
                .validate()?;
                self.declare_queue(q).await
            }
            Declaration::Topic(t) => {
                crate::topology::validate_topic_name(&t.name)?;
                self.declare_topic(t).await
            }
            Declaration::Subscription {
                topic,
                subscription,
            } => self.declare_subscription(topic, subscription).await,
        }
    }

    async fn queue(&self, name: &str) -> Result<QueueHandle, BusError> {
        let url = self
            .queue_url(name)
            .await?
            .ok_or_else(|| BusError::NotFound {
                kind: "queue",
                name: name.to_owned(),
            })?;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Q::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(name, "GetQueueAttributes", e))?;
        let arn = out
            .attributes()
            .and_then(|a| a.get(&Q::QueueArn))
            .cloned()
            .unwrap_or_default();
        Ok(QueueHandle::new(
            name,
            &arn,
            Arc::new(self.sqs_queue(name, &url)),
        ))
    }

    async fn topic(&self, name: &str) -> Result<Arc<dyn Publisher>, BusError> {
        let arn = self
            .topic_arn(name)
            .await?
            .ok_or_else(|| BusError::NotFound {
                kind: "topic",
                name: name.to_owned(),
            })?;
        let short = crate::transport::arn_resource_name(&arn).to_owned();
        Ok(Arc::new(SnsTopic::new(
            self.inner.sns.clone(),
            &short,
            &arn,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clients_are_built_with_the_attempt_timeout_and_without_stalled_stream_protection() {
        let config = config_loader()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "k", "s", None, None, "test",
            ))
            .load()
            .await;
        let timeouts = config.timeout_config().expect("timeouts");
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        let protection = config
            .stalled_stream_protection()
            .expect("stalled stream protection is set");
        assert!(!protection.is_enabled());
    }
}
