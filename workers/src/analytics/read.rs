//! Reading counters back: one series over a range of buckets, each bucket the sum of its
//! counter's shards, for `fleet counters`.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use super::aggregate::{Bucket, Series};
use super::error::AnalyticsError;
use super::store::CounterStore;

/// Most buckets one query reads (a day and a bit of minutes): each is a read of its own.
pub const MAX_BUCKETS: usize = 1_500;

/// A series over a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterQuery {
    /// What is counted.
    pub series: Series,
    /// The bucket size.
    pub bucket: Bucket,
    /// The range starts in the bucket holding this time.
    pub since: DateTime<Utc>,
    /// The range ends before this time (exclusive).
    pub until: DateTime<Utc>,
}

/// One bucket's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketValue {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// The bucket's name in counter keys, such as `2026-11-28T02`.
    pub label: String,
    /// The counter's value (the sum of its shards; 0 when never written).
    pub value: i64,
}

impl CounterQuery {
    /// The starts of the buckets in range: from the bucket holding `since` to the last one
    /// starting before `until`.
    ///
    /// # Errors
    /// `Query` when the series is not kept in this bucket size, or the range holds more than
    /// [`MAX_BUCKETS`] buckets.
    pub fn bucket_starts(&self) -> Result<Vec<DateTime<Utc>>, AnalyticsError> {
        if !self.series.buckets().contains(&self.bucket) {
            let kept: Vec<&str> = self.series.buckets().iter().map(|b| b.as_str()).collect();
            return Err(AnalyticsError::Query(format!(
                "{} counters are kept per {}, not per {}",
                self.kind(),
                kept.join(", "),
                self.bucket.as_str()
            )));
        }
        let mut starts = Vec::new();
        let mut start = self.bucket.start(self.since);
        while start < self.until {
            if starts.len() == MAX_BUCKETS {
                return Err(AnalyticsError::Query(format!(
                    "the range holds more than {MAX_BUCKETS} {} buckets: use a larger bucket or a shorter range",
                    self.bucket.as_str()
                )));
            }
            starts.push(start);
            start += self.bucket.length();
        }
        Ok(starts)
    }

    fn kind(&self) -> &'static str {
        match self.series {
            Series::Event(_) => "event",
            Series::Subject(_) => "subject",
            Series::Revenue(_) => "revenue",
        }
    }
}

/// The series' value in every bucket of the range, oldest first.
///
/// # Errors
/// `Query` for a range that cannot be read (see [`CounterQuery::bucket_starts`]), `Read` when
/// the store cannot be read.
pub async fn query(
    store: &dyn CounterStore,
    query: &CounterQuery,
) -> Result<Vec<BucketValue>, AnalyticsError> {
    let starts = query.bucket_starts()?;
    let keys: Vec<String> = starts
        .iter()
        .map(|t| query.series.key(query.bucket, *t))
        .collect();
    let values = store.read(&keys).await?;
    Ok(starts
        .into_iter()
        .zip(values)
        .map(|(start, value)| BucketValue {
            start,
            label: query.bucket.label(start),
            value,
        })
        .collect())
}

/// The values as a table: a heading naming the series, one line per bucket, and the total.
pub fn table(query: &CounterQuery, values: &[BucketValue]) -> String {
    let what = match &query.series {
        Series::Event(name) => format!("events named {name}"),
        Series::Subject(subject) => format!("events of subject {subject}"),
        Series::Revenue(currency) => format!("revenue in {currency} (minor units)"),
    };
    let total: i64 = values.iter().fold(0, |sum, v| sum.saturating_add(v.value));
    let width = values
        .iter()
        .map(|v| v.value.to_string().len())
        .chain([total.to_string().len(), "value".len()])
        .max()
        .unwrap_or(5);
    let label_width = values
        .iter()
        .map(|v| v.label.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "{what} per {}, {} to {}\n",
        query.bucket.as_str(),
        query.since.to_rfc3339_opts(SecondsFormat::Secs, true),
        query.until.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let _ = writeln!(out, "{:<label_width$}  {:>width$}", "bucket", "value");
    for v in values {
        let _ = writeln!(out, "{:<label_width$}  {:>width$}", v.label, v.value);
    }
    let _ = writeln!(out, "{:<label_width$}  {:>width$}", "total", total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{EventDeltas, MemoryCounterStore};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hours(since: &str, until: &str) -> CounterQuery {
        CounterQuery {
            series: Series::Event("checkout_started".into()),
            bucket: Bucket::Hour,
            since: utc(since),
            until: utc(until),
        }
    }

    #[test]
    fn the_range_runs_from_the_bucket_holding_since_to_the_last_starting_before_until() {
        let q = hours("2026-11-28T00:30:00Z", "2026-11-28T03:00:00Z");
        let labels: Vec<String> = q
            .bucket_starts()
            .unwrap()
            .into_iter()
            .map(|t| Bucket::Hour.label(t))
            .collect();
        assert_eq!(labels, ["2026-11-28T00", "2026-11-28T01", "2026-11-28T02"]);
        let q = hours("2026-11-28T00:00:00Z", "2026-11-28T00:00:00.001Z");
        assert_eq!(q.bucket_starts().unwrap().len(), 1);
        let q = hours("2026-11-28T05:00:00Z", "2026-11-28T01:00:00Z");
        assert!(q.bucket_starts().unwrap().is_empty());
    }

    #[test]
    fn ranges_too_long_and_buckets_not_kept_are_refused_with_the_fix() {
        let mut q = hours("2026-11-01T00:00:00Z", "2026-11-28T00:00:00Z");
        q.bucket = Bucket::Minute;
        let err = q.bucket_starts().unwrap_err().to_string();
        assert!(
            err.contains("more than 1500 minute buckets: use a larger bucket"),
            "{err}"
        );
        q.bucket = Bucket::Day;
        assert_eq!(q.bucket_starts().unwrap().len(), 27);
        q.series = Series::Subject("c-1".into());
        q.bucket = Bucket::Hour;
        assert_eq!(
            q.bucket_starts().unwrap_err().to_string(),
            "subject counters are kept per day, not per hour"
        );
    }

    #[tokio::test]
    async fn every_bucket_of_the_range_is_read_and_printed_with_the_total() {
        let store = MemoryCounterStore::new();
        let series = Series::Event("checkout_started".into());
        let t = utc("2026-11-28T02:57:00Z");
        let events = [
            EventDeltas::new("a", [(series.key(Bucket::Hour, t), 1)]),
            EventDeltas::new("b", [(series.key(Bucket::Hour, t), 1)]),
            EventDeltas::new(
                "c",
                [(series.key(Bucket::Hour, utc("2026-11-28T00:00:00Z")), 1)],
            ),
        ];
        store.apply(&events).await;
        let q = hours("2026-11-28T00:00:00Z", "2026-11-28T04:00:00Z");
        let values = query(&store, &q).await.unwrap();
        let got: Vec<(&str, i64)> = values.iter().map(|v| (v.label.as_str(), v.value)).collect();
        assert_eq!(
            got,
            [
                ("2026-11-28T00", 1),
                ("2026-11-28T01", 0),
                ("2026-11-28T02", 2),
                ("2026-11-28T03", 0)
            ]
        );
        assert_eq!(
            table(&q, &values),
            "events named checkout_started per hour, 2026-11-28T00:00:00Z to 2026-11-28T04:00:00Z\n\
             bucket         value\n\
             2026-11-28T00      1\n\
             2026-11-28T01      0\n\
             2026-11-28T02      2\n\
             2026-11-28T03      0\n\
             total              3\n"
        );
    }
}
