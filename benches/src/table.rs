//! The one table `fleet-bench` prints: a row per measurement, with its counts, the goal of
//! issue 14 it answers to, and whether the goal was met, and by how much it was missed.

use std::fmt::Write as _;

/// One row.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Embedded, SQS (moto), memory or latency.
    pub section: &'static str,
    /// What was measured: the contender and its load.
    pub subject: String,
    /// Messages received and handled, where that applies.
    pub counts: Option<(u64, u64)>,
    /// The measured figure, with its unit.
    pub result: String,
    /// The breakdown behind it (requests by operation, the ratio to a baseline...).
    pub detail: String,
    /// The goal, empty when the row is a baseline.
    pub goal: String,
    /// `met`, or `missed` and by how much; empty without a goal.
    pub verdict: String,
}

/// The goal "at least `goal`": met, or missed by how much (in the unit of `value`).
pub fn at_least(value: f64, goal: f64, unit: &str) -> String {
    if value >= goal {
        "met".to_owned()
    } else {
        format!(
            "missed by {} {unit} ({:.0} % short)",
            figure(goal - value),
            100.0 * (goal - value) / goal
        )
    }
}

/// The goal "at most `goal`": met, or missed by how much.
pub fn at_most(value: f64, goal: f64, unit: &str) -> String {
    if value <= goal {
        "met".to_owned()
    } else {
        format!(
            "missed by {} {unit} ({:.0} % over)",
            figure(value - goal),
            100.0 * (value - goal) / goal
        )
    }
}

/// Two verdicts of one row as one (`met` only when both are).
pub fn both(a: &str, b: &str) -> String {
    match (a == "met", b == "met") {
        (true, true) => "met".to_owned(),
        (true, false) => b.to_owned(),
        (false, true) => a.to_owned(),
        (false, false) => format!("{a}; {b}"),
    }
}

/// A number with as many digits as it deserves: `1.23 M`, `456 k`, `0.205`, `12.3`.
pub fn figure(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Bytes as MB (10⁶), one decimal.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Renders the rows as one markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| section | subject | received / handled | result | detail | goal | verdict |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let counts = r
            .counts
            .map(|(received, handled)| format!("{received} / {handled}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.section,
            cell(&r.subject),
            counts,
            cell(&r.result),
            cell(&r.detail),
            cell(&r.goal),
            cell(&r.verdict)
        );
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_by_how_much_a_goal_was_missed() {
        assert_eq!(at_least(1.2e6, 1e6, "msg/s"), "met");
        assert_eq!(
            at_least(4e5, 1e6, "msg/s"),
            "missed by 600 k msg/s (60 % short)"
        );
        assert_eq!(at_most(0.2, 0.205, "requests/msg"), "met");
        assert_eq!(
            at_most(0.21, 0.2, "requests/msg"),
            "missed by 0.010 requests/msg (5 % over)"
        );
        assert_eq!(both("met", "met"), "met");
        assert_eq!(both("met", "missed by x"), "missed by x");
    }

    #[test]
    fn a_row_is_one_line_of_seven_cells() {
        let table = render(&[Row {
            section: "embedded",
            subject: "a | b".to_owned(),
            counts: Some((3, 3)),
            ..Row::default()
        }]);
        let line = table.lines().nth(2).expect("a row");
        assert_eq!(line, "| embedded | a \\| b | 3 / 3 |  |  |  |  |");
    }
}
