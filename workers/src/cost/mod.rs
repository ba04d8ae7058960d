//! What the fleet costs on AWS, in plain sight: API requests per message and an estimated cost
//! per million messages for SQS, SNS and DynamoDB, from the API call counters that `fleet run`
//! exports (`fleet_aws_requests_total`, `fleet_dynamodb_*_units_total`) and the messages it
//! received (`fleet_messages_received_total`). `fleet stats --metrics <url>` prints it; the
//! Grafana dashboard's cost panel computes the same from Prometheus. Prices: [`prices`].

pub mod prices;
pub mod scrape;
pub mod units;

use std::collections::BTreeMap;
use std::fmt;

use scrape::Sample;

/// The counters the estimate reads, summed over every scrape given (one per process).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Messages received by every worker.
    pub messages: f64,
    /// AWS requests (retries included) by operation, IAM style (`sqs:ReceiveMessage`).
    pub requests: BTreeMap<String, f64>,
    /// Estimated DynamoDB write request units.
    pub write_units: f64,
    /// Estimated DynamoDB read request units.
    pub read_units: f64,
}

impl Usage {
    /// Adds the counters of one `/metrics` exposition.
    pub fn add_scrape(&mut self, text: &str) {
        for s in scrape::samples(text) {
            self.add(&s);
        }
    }

    fn add(&mut self, s: &Sample) {
        match s.name.as_str() {
            "fleet_messages_received_total" => self.messages += s.value,
            "fleet_aws_requests_total" => {
                let op = s.label("operation").unwrap_or("unknown").to_owned();
                *self.requests.entry(op).or_default() += s.value;
            }
            units::WRITE_UNITS => self.write_units += s.value,
            units::READ_UNITS => self.read_units += s.value,
            _ => {}
        }
    }

    /// Requests to one service (`sqs`, `sns`, `dynamodb`).
    pub fn requests_of(&self, service: &str) -> f64 {
        let prefix = format!("{service}:");
        self.requests
            .iter()
            .filter(|(op, _)| op.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The estimate; `None` before any message was received.
    pub fn estimate(&self) -> Option<Estimate> {
        if self.messages <= 0.0 {
            return None;
        }
        let per_message = |n: f64| n / self.messages;
        // Dollars per million units × units per message = dollars per million messages.
        let sqs = per_message(self.requests_of("sqs"));
        let sns = per_message(self.requests_of("sns"));
        let wru = per_message(self.write_units);
        let rru = per_message(self.read_units);
        Some(Estimate {
            messages: self.messages,
            lines: vec![
                Line {
                    service: "SQS",
                    per_message: sqs,
                    unit: "requests",
                    dollars_per_million: sqs * prices::SQS_STANDARD_PER_MILLION_REQUESTS,
                },
                Line {
                    service: "SNS",
                    per_message: sns,
                    unit: "requests",
                    dollars_per_million: sns * prices::SNS_PER_MILLION_REQUESTS,
                },
                Line {
                    service: "DynamoDB",
                    per_message: wru,
                    unit: "write units",
                    dollars_per_million: wru * prices::DYNAMODB_PER_MILLION_WRITE_UNITS,
                },
                Line {
                    service: "DynamoDB",
                    per_message: rru,
                    unit: "read units",
                    dollars_per_million: rru * prices::DYNAMODB_PER_MILLION_READ_UNITS,
                },
            ],
        })
    }
}

/// One service's share of the cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The service.
    pub service: &'static str,
    /// Requests (or request units) per received message.
    pub per_message: f64,
    /// What `per_message` counts.
    pub unit: &'static str,
    /// Estimated dollars per million received messages.
    pub dollars_per_million: f64,
}

/// The cost per million messages, by service.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Messages the estimate is over.
    pub messages: f64,
    /// One line per service and unit.
    pub lines: Vec<Line>,
}

impl Estimate {
    /// Estimated dollars per million received messages, every service together.
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.dollars_per_million).sum()
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cost over {} received messages (estimate; prices of {}, us-east-1, from workers/src/cost/prices.rs)",
            self.messages,
            prices::READ_ON
        )?;
        writeln!(
            f,
            "{:<10}{:>14}  {:<12}{:>22}",
            "service", "per message", "", "$ per million messages"
        )?;
        for l in &self.lines {
            writeln!(
                f,
                "{:<10}{:>14.3}  {:<12}{:>22.4}",
                l.service, l.per_message, l.unit, l.dollars_per_million
            )?;
        }
        write!(f, "{:<10}{:>50.4}", "total", self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"
fleet_messages_received_total{worker="orders",queue="fleet-orders"} 800
fleet_messages_received_total{worker="analytics",queue="fleet-analytics"} 200
fleet_aws_requests_total{operation="sqs:ReceiveMessage"} 100
fleet_aws_requests_total{operation="sqs:DeleteMessageBatch"} 100
fleet_aws_requests_total{operation="sns:PublishBatch"} 50
fleet_aws_requests_total{operation="dynamodb:TransactWriteItems"} 500
fleet_dynamodb_write_units_total{operation="dynamodb:TransactWriteItems"} 2000
fleet_dynamodb_read_units_total{operation="dynamodb:GetItem"} 10
"#;

    #[test]
    fn requests_and_units_per_message_priced_per_million() {
        let mut usage = Usage::default();
        usage.add_scrape(SCRAPE);
        let e = usage.estimate().unwrap();
        assert_eq!(e.messages, 1000.0);
        let sqs = &e.lines[0];
        assert!((sqs.per_message - 0.2).abs() < 1e-9);
        assert!((sqs.dollars_per_million - 0.08).abs() < 1e-9);
        let sns = &e.lines[1];
        assert!((sns.dollars_per_million - 0.025).abs() < 1e-9);
        let wru = &e.lines[2];
        assert!((wru.per_message - 2.0).abs() < 1e-9);
        assert!((wru.dollars_per_million - 1.25).abs() < 1e-9);
        assert!((e.total() - (0.08 + 0.025 + 1.25 + 0.00125)).abs() < 1e-9);
    }

    #[test]
    fn two_processes_add_up_and_no_messages_means_no_estimate() {
        let mut usage = Usage::default();
        assert!(usage.estimate().is_none());
        usage.add_scrape(SCRAPE);
        usage.add_scrape(SCRAPE);
        assert_eq!(usage.messages, 2000.0);
        assert_eq!(usage.requests_of("sqs"), 400.0);
    }
}
