//! deploy/observability: the Prometheus scrape configuration, the alert rules with a promtool
//! test for every alert, and the Grafana dashboard, whose queries parse and use only catalogued
//! metrics (a real scrape holding each of them is checked in observability_prometheus.rs).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::dashboard::{self, promtool_ok};

#[test]
fn the_scrape_configuration_passes_promtool_check_config() {
    let out = promtool_ok(&[
        "check",
        "config",
        dashboard::file("prometheus.yml").to_str().unwrap(),
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let out = promtool_ok(&[
        "check",
        "rules",
        dashboard::file("alerts.yml").to_str().unwrap(),
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
}

fn names_after(text: &str, key: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn every_alert_has_a_promtool_test_and_the_tests_pass() {
    let rules = std::fs::read_to_string(dashboard::file("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dashboard::file("alerts_test.yml")).unwrap();
    let alerts = names_after(&rules, "alert:");
    let tested = names_after(&tests, "alertname:");
    assert!(alerts.len() >= 4, "{alerts:?}");
    for required in [
        "FleetDeadLetterQueueNotEmpty",
        "FleetOldestMessageTooOld",
        "FleetErrorRatioHigh",
        "FleetNotConsuming",
    ] {
        assert!(
            alerts.contains(required),
            "{required} missing from alerts.yml"
        );
    }
    let untested: Vec<_> = alerts.difference(&tested).collect();
    assert!(untested.is_empty(), "alerts without a test: {untested:?}");
    // Each test checks the alert both silent and firing.
    for alert in &alerts {
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .filter(|t| t.starts_with(alert.as_str()))
            .filter(|t| {
                !t.split("- eval_time")
                    .next()
                    .unwrap()
                    .contains("exp_alerts: []")
            })
            .count();
        assert!(firing >= 1, "{alert}: no case where it fires");
    }
    let out = promtool_ok(&[
        "test",
        "rules",
        dashboard::file("alerts_test.yml").to_str().unwrap(),
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_dashboard_query_parses_in_promtool() {
    let rules = dashboard::dashboard_as_rules();
    let out = promtool_ok(&["check", "rules", rules.to_str().unwrap()]);
    let queries = dashboard::dashboard_queries().len();
    assert!(
        out.contains(&format!("SUCCESS: {queries} rules found")),
        "{out}"
    );
    let _ = std::fs::remove_file(rules);
}

/// Every metric Fleet's crates declare, from their catalogues.
fn catalogue() -> BTreeSet<String> {
    fleet_bus::metrics::CATALOGUE
        .iter()
        .chain(fleet_schemas::metrics::CATALOGUE)
        .chain(fleet_workers::observe::metrics::CATALOGUE)
        .map(|m| m.name.to_owned())
        .collect()
}

#[test]
fn every_dashboard_metric_and_alert_metric_is_in_the_catalogue() {
    let known = catalogue();
    let used = dashboard::dashboard_metrics();
    assert!(used.len() >= 20, "{used:?}");
    let unknown: Vec<_> = used.iter().filter(|m| !known.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "dashboard metrics missing from the catalogue: {unknown:?}"
    );
    let rules = std::fs::read_to_string(dashboard::file("alerts.yml")).unwrap();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("fleet_") {
            assert!(
                known.contains(word),
                "alerts.yml uses {word}, not in the catalogue"
            );
        }
    }
}

#[test]
fn the_dashboard_cost_panel_uses_the_prices_of_prices_rs() {
    use fleet_workers::cost::prices;
    let queries = dashboard::dashboard_queries();
    let cost = queries
        .iter()
        .find(|q| q.contains("fleet_dynamodb_write_units_total"))
        .expect("a cost query");
    for (metric, price) in [
        (
            "operation=~\"sqs:.*\"",
            prices::SQS_STANDARD_PER_MILLION_REQUESTS,
        ),
        ("operation=~\"sns:.*\"", prices::SNS_PER_MILLION_REQUESTS),
        (
            "fleet_dynamodb_write_units_total",
            prices::DYNAMODB_PER_MILLION_WRITE_UNITS,
        ),
        (
            "fleet_dynamodb_read_units_total",
            prices::DYNAMODB_PER_MILLION_READ_UNITS,
        ),
    ] {
        let at = cost
            .find(metric)
            .unwrap_or_else(|| panic!("{metric} not in {cost}"));
        let after = &cost[at..];
        let factor: f64 = after
            .split("* ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .map(|s| s.trim_end_matches(')'))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no price after {metric} in {cost}"));
        assert_eq!(factor, price, "{metric}");
    }
}

/// The README's metric table, as the catalogues say it must read.
fn metrics_table() -> String {
    let mut out =
        String::from("| metric | type | unit | labels | meaning |\n|---|---|---|---|---|\n");
    let catalogues: [&[fleet_bus::metrics::MetricDoc]; 3] = [
        fleet_bus::metrics::CATALOGUE,
        fleet_schemas::metrics::CATALOGUE,
        fleet_workers::observe::metrics::CATALOGUE,
    ];
    for m in catalogues.into_iter().flatten() {
        let kind = format!("{:?}", m.kind).to_lowercase();
        let unit = match m.unit {
            metrics::Unit::Seconds => "seconds",
            metrics::Unit::CountPerSecond => "per second",
            _ => "count",
        };
        let labels = m
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| `{}` | {kind} | {unit} | {labels} | {} |\n",
            m.name, m.help
        ));
    }
    out
}

#[test]
fn the_readme_lists_every_metric_of_the_catalogues() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme
        .split("<!-- metrics:begin -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- metrics:end -->").next())
        .expect("README: the metrics block");
    let expected = metrics_table();
    assert!(
        block == expected,
        "the README's metric table differs from the catalogues; it should read:\n{expected}"
    );
}
