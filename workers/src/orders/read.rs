//! What `fleet orders show` and `fleet orders list` print: an order with its facts, and a
//! customer's orders as a table. Ids and notes come from producers, so they are escaped for
//! the terminal.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_schemas::codes::minor_unit_digits;

use super::order::Order;
use super::store::{LoadedOrder, OrderRecord};
use crate::terminal::escape;

/// `1250` EUR as `12.50 EUR`, `1250` JPY as `1250 JPY`: the currency's minor unit, exactly.
pub fn money(cents: u64, currency: &str) -> String {
    let digits = minor_unit_digits(currency);
    let scale = 10u64.pow(digits);
    if digits == 0 {
        return format!("{cents} {currency}");
    }
    let width = digits as usize;
    format!("{}.{:0width$} {currency}", cents / scale, cents % scale)
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One order, field by field, with its lines, applied events and pending outbox rows.
pub fn show(loaded: &LoadedOrder) -> String {
    let (record, order) = (&loaded.record, &loaded.record.order);
    let currency = order.placed.currency.as_str();
    let mut rows: Vec<(&str, String)> = vec![
        ("order", escape(order.order_id())),
        ("customer", escape(order.customer_id())),
        (
            "email",
            order
                .placed
                .customer_email
                .as_ref()
                .map_or_else(|| "-".to_owned(), |e| escape(e)),
        ),
        ("status", order.status.to_string()),
        ("total", money(order.placed.total_cents, currency)),
    ];
    rows.push(("paid", paid_text(order)));
    rows.push(("refunded", money(order.refunded_cents, currency)));
    rows.push((
        "shipment",
        order.shipment.as_ref().map_or_else(
            || "-".to_owned(),
            |s| format!("{} {}", s.carrier.as_str(), escape(&s.tracking_number)),
        ),
    ));
    rows.push(("cancelled", cancel_text(order)));
    rows.push(("placed at", time(&order.placed_at)));
    rows.push(("updated at", time(&order.updated_at)));
    rows.push(("version", record.version.to_string()));
    rows.push(("events", escape(&record.applied.join(", "))));
    rows.push(("outbox", outbox_text(loaded)));
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<11}{value}");
    }
    out.push_str(&items_table(order));
    out
}

fn paid_text(order: &Order) -> String {
    order.payment.as_ref().map_or_else(
        || "-".to_owned(),
        |p| {
            format!(
                "{} (payment {})",
                money(p.amount_cents, order.placed.currency.as_str()),
                escape(&p.payment_id)
            )
        },
    )
}

fn cancel_text(order: &Order) -> String {
    order.cancellation.as_ref().map_or_else(
        || "-".to_owned(),
        |c| match &c.note {
            Some(note) => format!("{}: {}", c.reason.as_str(), escape(note)),
            None => c.reason.as_str().to_owned(),
        },
    )
}

fn outbox_text(loaded: &LoadedOrder) -> String {
    if loaded.outbox.is_empty() {
        return "nothing pending".to_owned();
    }
    let ids: Vec<String> = loaded.outbox.iter().map(|r| escape(r.id())).collect();
    format!("{} pending: {}", ids.len(), ids.join(", "))
}

fn items_table(order: &Order) -> String {
    let currency = order.placed.currency.as_str();
    let rows: Vec<[String; 3]> = order
        .placed
        .items
        .iter()
        .map(|i| {
            [
                escape(&i.sku),
                i.quantity.get().to_string(),
                money(i.unit_price_cents, currency),
            ]
        })
        .collect();
    format!(
        "items\n{}",
        table(&["sku", "quantity", "unit price"], &rows, "  ")
    )
}

/// A customer's orders, one line each, oldest first, and how many there are.
pub fn list(customer_id: &str, records: &[OrderRecord]) -> String {
    let mut sorted: Vec<&OrderRecord> = records.iter().collect();
    sorted.sort_by(|a, b| {
        (a.order.placed_at, a.order.order_id()).cmp(&(b.order.placed_at, b.order.order_id()))
    });
    let rows: Vec<[String; 6]> = sorted
        .iter()
        .map(|r| {
            let o = &r.order;
            let currency = o.placed.currency.as_str();
            [
                escape(o.order_id()),
                o.status.to_string(),
                money(o.placed.total_cents, currency),
                money(o.paid_cents(), currency),
                money(o.refunded_cents, currency),
                time(&o.updated_at),
            ]
        })
        .collect();
    let mut out = table(
        &["order", "status", "total", "paid", "refunded", "updated"],
        &rows,
        "",
    );
    let _ = writeln!(
        out,
        "{} order(s) of customer {}",
        records.len(),
        escape(customer_id)
    );
    out
}

/// Left-aligned columns two spaces apart, each as wide as its widest cell.
fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]], indent: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{indent}{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_minor_unit() {
        assert_eq!(money(1250, "EUR"), "12.50 EUR");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(1250, "JPY"), "1250 JPY");
        assert_eq!(money(1_234_567, "KWD"), "1234.567 KWD");
        assert_eq!(money(u64::MAX, "USD"), "184467440737095516.15 USD");
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [
            ["o-1".to_owned(), "paid".to_owned()],
            ["order-long".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            table(&["order", "status"], &rows, ""),
            "order       status\no-1         paid\norder-long  x\n"
        );
    }
}
