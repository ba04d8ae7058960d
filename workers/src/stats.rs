//! Queue statistics for operators: depth, in flight, delayed, and the age of the oldest message.

use std::time::{Duration, SystemTime};

use fleet_bus::{BusError, QueueCounts, Topology, Transport};

/// One queue's numbers.
#[derive(Clone, Debug)]
pub struct QueueStats {
    /// The queue.
    pub name: String,
    /// Whether it is a dead-letter queue of the topology.
    pub dead_letter: bool,
    /// Visible, in flight and delayed messages.
    pub counts: QueueCounts,
    /// Age of the oldest message, from CloudWatch's `ApproximateAgeOfOldestMessage` (SQS exposes
    /// it nowhere else); `None` when CloudWatch has no recent data point.
    pub oldest: Option<Duration>,
}

/// Reads `ApproximateAgeOfOldestMessage` for a queue from CloudWatch (the maximum of the last
/// five minutes).
///
/// # Errors
/// When CloudWatch refuses; the caller shows the age as unknown.
pub async fn oldest_message_age(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    queue: &str,
) -> Result<Option<Duration>, aws_sdk_cloudwatch::Error> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = SystemTime::now();
    let out = cloudwatch
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(Dimension::builder().name("QueueName").value(queue).build())
        .start_time(DateTime::from(now - Duration::from_secs(300)))
        .end_time(DateTime::from(now))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await?;
    let latest = out
        .datapoints()
        .iter()
        .filter(|p| p.timestamp().is_some())
        .max_by_key(|p| p.timestamp().map(|t| t.secs()));
    Ok(latest
        .and_then(|p| p.maximum())
        .map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// The numbers of every queue of a topology, dead-letter queues included, in declaration order.
///
/// # Errors
/// When a queue cannot be described (missing: run `fleet provision`).
pub async fn collect(
    transport: &dyn Transport,
    topology: &Topology,
    cloudwatch: Option<&aws_sdk_cloudwatch::Client>,
) -> Result<Vec<QueueStats>, BusError> {
    let full = topology.with_implicit_dead_letter_queues();
    let dead_letters: Vec<&str> = full
        .queues
        .iter()
        .filter_map(|q| q.dead_letter.as_ref().map(|d| d.queue.as_str()))
        .collect();
    let mut out = Vec::new();
    for q in &full.queues {
        let counts = transport
            .queue(&q.name)
            .await?
            .admin()
            .describe()
            .await?
            .counts;
        let oldest = match cloudwatch {
            Some(cw) => oldest_message_age(cw, &q.name).await.unwrap_or_else(|e| {
                tracing::warn!(queue = %q.name, error = %aws_sdk_cloudwatch::error::DisplayErrorContext(&e), "cannot read the oldest message age from CloudWatch");
                None
            }),
            None => None,
        };
        out.push(QueueStats {
            name: q.name.clone(),
            dead_letter: dead_letters.contains(&q.name.as_str()),
            counts,
            oldest,
        });
    }
    Ok(out)
}

/// The statistics as a table.
pub fn table(stats: &[QueueStats]) -> String {
    let mut s = format!(
        "{:<32}{:>10}{:>11}{:>9}  {}\n",
        "queue", "visible", "in flight", "delayed", "oldest"
    );
    for q in stats {
        let name = if q.dead_letter {
            format!("{} (dlq)", q.name)
        } else {
            q.name.clone()
        };
        let oldest = q.oldest.map_or_else(
            || "n/a".to_owned(),
            |d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string(),
        );
        s.push_str(&format!(
            "{name:<32}{:>10}{:>11}{:>9}  {oldest}\n",
            q.counts.visible, q.counts.in_flight, q.counts.delayed
        ));
    }
    s
}
