//! `fleet counters`: one series of the analytics counters over a time range, each bucket the sum
//! of its shards, as a table.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, ValueEnum};

use super::{CliResult, aws};
use crate::analytics::{
    Bucket, CounterQuery, DynamoCounterConfig, DynamoCounterStore, Series, read,
};
use crate::table::DEFAULT_TABLE;

/// Which counters to read, and over which range.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("series").required(true).args(["name", "subject", "revenue"])))]
pub(super) struct CountersArgs {
    /// Events of this name: a tracked name (checkout_started) or a message type (order.placed).
    #[arg(long)]
    name: Option<String>,
    /// `analytics.tracked` events of this subject (kept per day).
    #[arg(long)]
    subject: Option<String>,
    /// Order revenue in the currency's minor units (kept per day); needs --currency.
    #[arg(long, requires = "currency")]
    revenue: bool,
    /// The revenue's currency, such as EUR.
    #[arg(long, requires = "revenue")]
    currency: Option<String>,
    /// Bucket size (default: hour for --name, day otherwise).
    #[arg(long, value_enum)]
    bucket: Option<BucketArg>,
    /// Start of the range, RFC 3339 (default: the start of the current UTC day).
    #[arg(long, value_parser = rfc3339)]
    since: Option<DateTime<Utc>>,
    /// End of the range, exclusive, RFC 3339 (default: now).
    #[arg(long, value_parser = rfc3339)]
    until: Option<DateTime<Utc>>,
    /// The table.
    #[arg(long, default_value = DEFAULT_TABLE)]
    table: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum BucketArg {
    Minute,
    Hour,
    Day,
}

fn rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time such as 2026-11-28T00:00:00Z ({e})"))
}

impl CountersArgs {
    /// The query these arguments ask for, with defaults taken at `now`.
    fn query(&self, now: DateTime<Utc>) -> CounterQuery {
        let series = match (&self.name, &self.subject, &self.currency) {
            (Some(name), _, _) => Series::Event(name.clone()),
            (_, Some(subject), _) => Series::Subject(subject.clone()),
            (_, _, currency) => Series::Revenue(currency.clone().unwrap_or_default()),
        };
        let bucket = match self.bucket {
            Some(BucketArg::Minute) => Bucket::Minute,
            Some(BucketArg::Hour) => Bucket::Hour,
            Some(BucketArg::Day) => Bucket::Day,
            None if matches!(series, Series::Event(_)) => Bucket::Hour,
            None => Bucket::Day,
        };
        CounterQuery {
            series,
            bucket,
            since: self.since.unwrap_or_else(|| Bucket::Day.start(now)),
            until: self.until.unwrap_or(now),
        }
    }
}

/// Reads the counters and prints them.
pub(super) async fn run_counters(args: CountersArgs) -> CliResult {
    let query = args.query(Utc::now());
    // Refused before any AWS call: a bucket the series is not kept in, a range too long.
    query.bucket_starts()?;
    let (_, config) = aws().await?;
    let store = DynamoCounterStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        DynamoCounterConfig {
            table: args.table,
            ..DynamoCounterConfig::default()
        },
    );
    let values = read::query(&store, &query).await?;
    print!("{}", read::table(&query, &values));
    Ok(ExitCode::SUCCESS)
}
