//! Consumers on the SQS wire against moto, one at a time, each in a process of its own behind
//! a [`CountingProxy`], on a fresh queue (with a dead-letter queue, `maxReceiveCount` 5) that a
//! feeder keeps shallow: it sends straight to moto, never through the proxy, in batches of 10
//! whenever fewer than `low` messages are visible, up to `high`, until it has sent exactly `n`.
//! The consumer stops after handling `n` (its deletes done), so `received == handled == n`.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use tokio::process::Command;

use crate::child::{Measured, Outcome};
use crate::proxy::{CountingProxy, Counts};

/// How a contender is started; `endpoint` is the proxy's.
pub trait Contender {
    /// Its name in the table.
    fn name(&self) -> String;
    /// The command that runs it on `queue` (a name, and its URL at the proxy) until it has
    /// handled `n` messages.
    fn command(&self, endpoint: &str, queue: &str, queue_url: &str, n: usize) -> Command;
}

/// How deep the feeder keeps the queue.
#[derive(Clone, Copy, Debug)]
pub struct Depth {
    /// Below this many visible messages, the feeder sends.
    pub low: usize,
    /// It sends until about this many are visible.
    pub high: usize,
}

/// One contender's run.
#[derive(Clone, Debug)]
pub struct SqsRun {
    /// The contender's name.
    pub name: String,
    /// Messages the feeder sent.
    pub fed: u64,
    /// What the consumer says it received and handled, its CPU time and peak RSS.
    pub outcome: Outcome,
    /// What went through the proxy.
    pub counts: Counts,
}

impl SqsRun {
    /// A count from the consumer's result line.
    pub fn reported(&self, key: &str) -> u64 {
        self.outcome
            .result
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }
}

/// An SQS client straight to moto, with the static credentials moto accepts.
pub fn direct_client(moto: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "fleet-bench",
            "fleet-bench",
            None,
            None,
            "fleet-bench",
        ))
        .build();
    Client::from_conf(config)
}

/// Runs `contender` on a fresh queue of `n` messages kept at `depth`.
///
/// # Errors
/// When moto refuses, the contender fails or takes longer than `limit`.
pub async fn measure(
    moto: &str,
    contender: &dyn Contender,
    n: usize,
    depth: Depth,
    limit: Duration,
) -> anyhow::Result<SqsRun> {
    let name = contender.name();
    let client = direct_client(moto);
    let queue = unique_queue_name(&name);
    let url = create_queue(&client, &queue).await?;
    let proxy = CountingProxy::start(moto).await?;
    let path = url
        .splitn(4, '/')
        .nth(3)
        .with_context(|| format!("queue URL {url} has no path"))?;
    let url_at_proxy = format!("{}/{path}", proxy.endpoint());
    let command = contender.command(proxy.endpoint(), &queue, &url_at_proxy, n);
    let mut child = Measured::start(&name, command, Duration::from_secs(60)).await?;
    let mut sent = fill(&client, &url, n, 0, depth.high.min(n)).await?;
    let feeder = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            while sent < n {
                let visible = visible(&client, &url).await?;
                if visible < depth.low {
                    sent = fill(&client, &url, n, sent, depth.high.saturating_sub(visible)).await?;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            anyhow::Ok(sent)
        }
    });
    let outcome = child.run(limit).await;
    let fed = if outcome.is_ok() {
        feeder.await??
    } else {
        feeder.abort();
        0
    };
    let outcome = outcome?;
    child.finish().await?;
    let counts = proxy.counts();
    for q in [url.clone(), format!("{url}-dlq")] {
        // Left behind only in moto's memory, which dies with the run.
        let _ = client.delete_queue().queue_url(q).send().await;
    }
    Ok(SqsRun {
        name,
        fed: fed as u64,
        outcome,
        counts,
    })
}

fn unique_queue_name(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("bench-{slug}-{nanos}")
}

/// Creates `queue` with a dead-letter queue (`maxReceiveCount` 5) and a 30 s visibility
/// timeout; returns its URL.
async fn create_queue(client: &Client, queue: &str) -> anyhow::Result<String> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{queue}-dlq"))
        .send()
        .await?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("no dead-letter queue ARN")?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
    client
        .create_queue()
        .queue_name(queue)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?
        .queue_url
        .context("no queue URL")
}

async fn visible(client: &Client, url: &str) -> anyhow::Result<usize> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    Ok(attributes
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Sends up to `room` more messages (never past `n` in all) in batches of 10; returns how many
/// are sent in all.
async fn fill(
    client: &Client,
    url: &str,
    n: usize,
    mut sent: usize,
    room: usize,
) -> anyhow::Result<usize> {
    let until = n.min(sent + room);
    while sent < until {
        let batch = (until - sent).min(10);
        let entries = (0..batch)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("{{\"n\":{}}}", sent + i))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await?;
        anyhow::ensure!(
            out.failed.is_empty(),
            "moto refused entries: {:?}",
            out.failed
        );
        sent += batch;
    }
    Ok(sent)
}

/// Fleet's consumer at `ConsumerConfig::default()`: the `fleet-bench-sqs` binary beside this one.
#[derive(Debug)]
pub struct FleetContender {
    /// The `fleet-bench-sqs` binary.
    pub binary: std::path::PathBuf,
}

impl Contender for FleetContender {
    fn name(&self) -> String {
        "Fleet, defaults".to_owned()
    }

    fn command(&self, endpoint: &str, queue: &str, _queue_url: &str, n: usize) -> Command {
        let mut c = Command::new(&self.binary);
        c.args([
            "--endpoint",
            endpoint,
            "--queue",
            queue,
            "-n",
            &n.to_string(),
        ]);
        c
    }
}

/// `sqs-consumer` (npm) through `benches/node/sqs-consumer-bench.mjs`.
#[derive(Debug)]
pub struct SqsConsumerContender {
    /// The `node` to run.
    pub node: std::path::PathBuf,
    /// The script.
    pub script: std::path::PathBuf,
    /// `message` (`handleMessage`) or `batch` (`handleMessageBatch`).
    pub mode: &'static str,
    /// The installed version of sqs-consumer, for the table.
    pub version: String,
}

impl Contender for SqsConsumerContender {
    fn name(&self) -> String {
        let handler = match self.mode {
            "batch" => "handleMessageBatch",
            _ => "handleMessage",
        };
        format!("sqs-consumer {}, {handler}", self.version)
    }

    fn command(&self, endpoint: &str, _queue: &str, queue_url: &str, n: usize) -> Command {
        let mut c = Command::new(&self.node);
        // The AWS SDK warns on stderr that releases after January 2027 will need Node 22; the
        // pinned one runs on 20.
        c.env("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true");
        c.arg(&self.script).args([
            "--endpoint",
            endpoint,
            "--queue-url",
            queue_url,
            "-n",
            &n.to_string(),
            "--mode",
            self.mode,
        ]);
        c
    }
}
