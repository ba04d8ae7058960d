//! What `fleet demo` prints.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use super::check::Checked;
use crate::orders::LoadedOrder;
use crate::run::Summary;
use crate::scenario::Scenario;

/// Everything the demo did and found.
pub struct DemoReport {
    /// The scenario published.
    pub scenario: Scenario,
    /// The workers' shutdown reports.
    pub summary: Summary,
    /// The verdict against the model.
    pub checked: Checked,
    /// The orders as the orders worker left them.
    pub orders: Vec<LoadedOrder>,
    /// The analytics counters.
    pub counters: HashMap<String, i64>,
    /// The emails the file mailer sent.
    pub emails: Vec<super::SentEmail>,
    /// Its file.
    pub emails_file: std::path::PathBuf,
    /// How long it took.
    pub elapsed: Duration,
}

impl DemoReport {
    /// Effects missing.
    pub fn lost(&self) -> usize {
        self.checked.lost.len()
    }

    /// Effects applied more than once.
    pub fn double_applied(&self) -> usize {
        self.checked.double_applied.len()
    }

    /// Whether everything matches the model.
    pub fn ok(&self) -> bool {
        self.checked.ok()
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scenario;
        writeln!(
            f,
            "published {} order events ({} distinct, {} duplicates, shuffled; {} impossible) for {} orders, seed {}",
            s.publish.len(),
            s.events.len(),
            s.publish.len() - s.events.len(),
            s.refused_ids().len(),
            s.orders.len(),
            s.seed
        )?;
        writeln!(f, "\nworkers (messages received and how each ended):")?;
        writeln!(f, "{}", self.summary)?;
        self.orders_table(f)?;
        self.counters_table(f)?;
        writeln!(f, "\ndead letters (orders), by reason:")?;
        for (kind, n) in &self.checked.dead_letters {
            writeln!(f, "  {kind:<24} {n}")?;
        }
        let (want, got) = self.checked.confirmations;
        writeln!(
            f,
            "\norder confirmations sent by the email worker (file mailer): {got} of {want} placed orders, {} emails in all, in {}",
            self.emails.len(),
            self.emails_file.display()
        )?;
        for e in self.emails.iter().take(3) {
            writeln!(
                f,
                "  {} to {} \"{}\" ({})",
                e.provider_id, e.to, e.subject, e.event_id
            )?;
        }
        for line in self
            .checked
            .lost
            .iter()
            .chain(&self.checked.double_applied)
            .chain(&self.checked.wrong)
            .take(20)
        {
            writeln!(f, "  MISMATCH {line}")?;
        }
        write!(
            f,
            "\nchecked against the scenario's model: lost {}, double-applied {}, wrong {} ({:.1} s)",
            self.lost(),
            self.double_applied(),
            self.checked.wrong.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

impl DemoReport {
    fn orders_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut by_status: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
        for o in &self.orders {
            let e = by_status.entry(o.record.order.status.as_str()).or_default();
            e.0 += 1;
            e.1 += o.record.order.paid_cents();
            e.2 += o.record.order.refunded_cents;
        }
        writeln!(f, "\norders by status (all currencies, in cents):")?;
        writeln!(
            f,
            "  {:<10} {:>6} {:>12} {:>12}",
            "status", "orders", "paid", "refunded"
        )?;
        for (status, (n, paid, refunded)) in by_status {
            writeln!(f, "  {status:<10} {n:>6} {paid:>12} {refunded:>12}")?;
        }
        Ok(())
    }

    fn counters_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\ncounters per day (analytics):")?;
        writeln!(
            f,
            "  (event#order.<kind> counts every order event published, impossible ones included;\n   event#order_<kind> counts those the orders worker applied; revenue is payments less refunds, in cents)"
        )?;
        let mut rows: Vec<(&String, &i64)> = self
            .counters
            .iter()
            .filter(|(k, _)| k.contains("#day#") && !k.starts_with("subject#"))
            .collect();
        rows.sort();
        for (key, value) in rows {
            writeln!(f, "  {key:<48} {value:>10}")?;
        }
        let subjects = self
            .counters
            .keys()
            .filter(|k| k.starts_with("subject#"))
            .count();
        writeln!(
            f,
            "  ({} counters in all, {subjects} of them per customer and day)",
            self.counters.len()
        )
    }
}
