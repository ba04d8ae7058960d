//! `fleet counters` against moto: counters written by the DynamoDB store over several shards
//! are read back per bucket, summed, and printed as a table; what cannot be answered is refused
//! with the reason.

#![allow(clippy::unwrap_used)]

mod analytics_support;
mod common;

use analytics_support::Dynamo;
use chrono::{DateTime, TimeDelta, Utc};
use fleet_workers::analytics::{Bucket, CounterStore, EventDeltas, Series};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// One event of `name` by `subject` at `t`, with its revenue when given: the deltas the worker
/// would write, one batch per event so they spread over the shards.
async fn write(d: &Dynamo, id: &str, name: &str, subject: &str, t: DateTime<Utc>, eur: i64) {
    let event = Series::Event(name.to_owned());
    let mut deltas: Vec<(String, i64)> =
        Bucket::ALL.iter().map(|b| (event.key(*b, t), 1)).collect();
    deltas.push((Series::Subject(subject.to_owned()).key(Bucket::Day, t), 1));
    if eur != 0 {
        deltas.push((Series::Revenue("EUR".into()).key(Bucket::Day, t), eur));
    }
    let outcomes = d.store.apply(&[EventDeltas::new(id, deltas)]).await;
    assert_eq!(outcomes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_printed_per_bucket_summed_over_their_shards() {
    let d = Dynamo::new().await;
    let start = at("2026-11-28T00:10:00Z");
    for i in 0..12 {
        // Two events an hour at 00:10 and 00:40, then 01:10 ... 05:40.
        let t = start + TimeDelta::minutes(30 * i);
        write(&d, &format!("e{i}"), "checkout_started", "c-1", t, 100).await;
    }
    write(
        &d,
        "late",
        "checkout_started",
        "c-2",
        at("2026-11-29T00:00:00Z"),
        -50,
    )
    .await;
    assert!(
        d.items("COUNTER#event#checkout_started#day#2026-11-28")
            .await
            .len()
            > 1,
        "several shards"
    );

    let hours = common::fleet(&[
        "counters",
        "--table",
        &d.table,
        "--name",
        "checkout_started",
        "--bucket",
        "hour",
        "--since",
        "2026-11-28T00:00:00Z",
        "--until",
        "2026-11-28T04:00:00+00:00",
    ]);
    assert!(hours.ok, "{}", hours.stderr);
    assert_eq!(
        hours.stdout,
        "events named checkout_started per hour, 2026-11-28T00:00:00Z to 2026-11-28T04:00:00Z\n\
         bucket         value\n\
         2026-11-28T00      2\n\
         2026-11-28T01      2\n\
         2026-11-28T02      2\n\
         2026-11-28T03      2\n\
         total              8\n"
    );
    let days = common::fleet(&[
        "counters",
        "--table",
        &d.table,
        "--name",
        "checkout_started",
        "--bucket",
        "day",
        "--since",
        "2026-11-27T12:00:00Z",
        "--until",
        "2026-11-30T00:00:00Z",
    ]);
    assert!(
        days.stdout.contains(
            "2026-11-27      0\n2026-11-28     12\n2026-11-29      1\ntotal          13\n"
        ),
        "{}",
        days.stdout
    );
    let subject = common::fleet(&[
        "counters",
        "--table",
        &d.table,
        "--subject",
        "c-1",
        "--since",
        "2026-11-28T00:00:00Z",
        "--until",
        "2026-11-29T00:00:00Z",
    ]);
    assert!(
        subject.stdout.starts_with("events of subject c-1 per day"),
        "{}",
        subject.stdout
    );
    assert!(
        subject.stdout.contains("2026-11-28     12\n"),
        "{}",
        subject.stdout
    );
    let revenue = common::fleet(&[
        "counters",
        "--table",
        &d.table,
        "--revenue",
        "--currency",
        "EUR",
        "--since",
        "2026-11-28T00:00:00Z",
        "--until",
        "2026-11-30T00:00:00Z",
    ]);
    assert!(
        revenue
            .stdout
            .starts_with("revenue in EUR (minor units) per day"),
        "{}",
        revenue.stdout
    );
    assert!(
        revenue
            .stdout
            .contains("2026-11-28   1200\n2026-11-29    -50\ntotal        1150\n"),
        "{}",
        revenue.stdout
    );
}

#[tokio::test]
async fn what_cannot_be_answered_is_refused_with_the_reason() {
    let bucket = common::fleet(&["counters", "--subject", "c-1", "--bucket", "minute"]);
    assert_eq!(bucket.code, Some(1));
    assert!(
        bucket
            .stderr
            .contains("subject counters are kept per day, not per minute"),
        "{}",
        bucket.stderr
    );
    let long = common::fleet(&[
        "counters",
        "--name",
        "x",
        "--bucket",
        "minute",
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-28T00:00:00Z",
    ]);
    assert!(
        long.stderr.contains("more than 1500 minute buckets"),
        "{}",
        long.stderr
    );
    let none = common::fleet(&["counters"]);
    assert!(!none.ok);
    assert!(
        none.stderr
            .contains("--name <NAME>|--subject <SUBJECT>|--revenue"),
        "{}",
        none.stderr
    );
    let currency = common::fleet(&["counters", "--revenue"]);
    assert!(
        currency.stderr.contains("--currency"),
        "{}",
        currency.stderr
    );
    let since = common::fleet(&["counters", "--name", "x", "--since", "yesterday"]);
    assert!(
        since.stderr.contains("not an RFC 3339 time"),
        "{}",
        since.stderr
    );
    let missing = common::fleet(&["counters", "--table", "no-such-table", "--name", "x"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("reading the counters failed"),
        "{}",
        missing.stderr
    );
}
