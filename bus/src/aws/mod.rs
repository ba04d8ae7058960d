//! The production transport: SQS queues and SNS topics through the AWS SDK for Rust.
//!
//! One [`SqsTransport`] holds one SQS and one SNS client built from one shared `aws-config`
//! (the standard credential chain; `AWS_ENDPOINT_URL` and the other endpoint overrides work).
//! Clone it freely: clones share the clients and their connection pools.

mod convert;
mod error;
mod policy;
mod provision;
mod queue;
mod topic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName as Q;

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
    /// Topic ARNs by name, so a topic is looked up once.
    topics: Mutex<HashMap<String, String>>,
}

impl SqsTransport {
    /// Builds both clients from one SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                sqs: aws_sdk_sqs::Client::new(config),
                sns: aws_sdk_sns::Client::new(config),
                topics: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Builds both clients from the environment: the standard credential chain, region and
    /// endpoint overrides such as `AWS_ENDPOINT_URL`.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
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

    /// The topic's ARN, or `None` when it does not exist.
    ///
    /// # Errors
    /// When listing topics fails.
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
        let suffix = format!(":{name}");
        let mut token = None;
        loop {
            let out = self
                .sns()
                .list_topics()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(name, "ListTopics", e))?;
            if let Some(arn) = out
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|arn| arn.ends_with(&suffix))
            {
                self.remember_topic(name, arn);
                return Ok(Some(arn.to_owned()));
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(None),
            }
        }
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
        Ok(Arc::new(SnsTopic::new(self.inner.sns.clone(), name, &arn)))
    }
}
