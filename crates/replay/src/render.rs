//! A [`ReplayReport`] as an aligned table for the terminal, as CSV, or as JSON.
//!
//! CSV holds two tables separated by one empty line, each with its own header row: the changed
//! claims, then the totals per clinic, payer and code. Amounts are integer cents in CSV and JSON,
//! dollars with two decimals in the table.

use std::fmt::Write as _;

use crate::report::{ChangedClaim, Pricing, ReplayReport, Total};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for the terminal.
    Table,
    /// Comma-separated values.
    Csv,
    /// One JSON document.
    Json,
}

/// Renders `report` in `format`.
pub fn render(report: &ReplayReport, format: Format) -> Result<String, serde_json::Error> {
    Ok(match format {
        Format::Table => table(report),
        Format::Csv => csv(report),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report)?;
            text.push('\n');
            text
        }
    })
}

const CLAIM_COLUMNS: [&str; 13] = [
    "chain",
    "session",
    "payer",
    "clinic",
    "date_of_service",
    "status",
    "changes",
    "before",
    "after",
    "expected_before",
    "expected_after",
    "delta",
    "filing_deadline",
];

const TOTAL_COLUMNS: [&str; 10] = [
    "clinic",
    "payer",
    "code",
    "claims_before",
    "claims_after",
    "units_before",
    "units_after",
    "expected_before",
    "expected_after",
    "delta",
];

fn claim_row(claim: &ChangedClaim, money: fn(i64) -> String) -> Vec<String> {
    vec![
        claim.chain.to_string(),
        claim.session.to_string(),
        claim
            .payer_key
            .clone()
            .unwrap_or_else(|| claim.payer.to_string()),
        claim.clinic.to_string(),
        claim
            .date_of_service
            .map(|day| day.to_string())
            .unwrap_or_default(),
        claim.status.to_owned(),
        claim
            .changes
            .iter()
            .map(|change| change.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        lines(&claim.before),
        lines(&claim.after),
        money(claim.before.expected_payment_cents),
        money(claim.after.expected_payment_cents),
        money(claim.delta_cents),
        claim
            .filing_deadline
            .map(|day| day.to_string())
            .unwrap_or_default(),
    ]
}

fn total_row(total: &Total, money: fn(i64) -> String) -> Vec<String> {
    vec![
        total.clinic.to_string(),
        total.payer.clone(),
        total.code.clone(),
        total.claims_before.to_string(),
        total.claims_after.to_string(),
        total.units_before.to_string(),
        total.units_after.to_string(),
        money(total.expected_before_cents),
        money(total.expected_after_cents),
        money(total.delta_cents),
    ]
}

/// A claim's lines in one cell: `v2: 97124x2 97110x1[GP,XU]`, or the derivation error.
fn lines(pricing: &Pricing) -> String {
    if let Some(error) = &pricing.derivation_error {
        return format!("not derived: {error}");
    }
    let mut text = pricing
        .rules_version
        .map_or_else(|| "-:".to_owned(), |version| format!("v{version}:"));
    for line in &pricing.lines {
        let _ = write!(text, " {}x{}", line.code, line.units);
        if !line.modifiers.is_empty() {
            let _ = write!(text, "[{}]", line.modifiers.join(","));
        }
    }
    text
}

fn cents(value: i64) -> String {
    value.to_string()
}

fn dollars(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let value = value.unsigned_abs();
    format!("{sign}{}.{:02}", value / 100, value % 100)
}

fn csv(report: &ReplayReport) -> String {
    let mut text = String::new();
    let mut header: Vec<String> = CLAIM_COLUMNS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    header.push("resubmittable".to_owned());
    csv_line(&mut text, &header);
    for claim in &report.changed {
        let mut row = claim_row(claim, cents);
        row.push(claim.resubmittable.to_string());
        csv_line(&mut text, &row);
    }
    text.push('\n');
    let header: Vec<String> = TOTAL_COLUMNS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    csv_line(&mut text, &header);
    for total in &report.totals {
        csv_line(&mut text, &total_row(total, cents));
    }
    text
}

fn csv_line(text: &mut String, fields: &[String]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            text.push('"');
            text.push_str(&field.replace('"', "\"\""));
            text.push('"');
        } else {
            text.push_str(field);
        }
    }
    text.push('\n');
}

fn table(report: &ReplayReport) -> String {
    let mut text = String::new();
    let scope = &report.scope;
    let proposed: Vec<String> = report
        .proposed
        .iter()
        .map(|version| {
            format!(
                "{} v{} from {}",
                version.payer_key, version.version, version.effective_from
            )
        })
        .collect();
    let _ = writeln!(
        text,
        "Proposed versions not on the log yet: {}",
        if proposed.is_empty() {
            "none".to_owned()
        } else {
            proposed.join(", ")
        }
    );
    let range = match (scope.from, scope.to) {
        (None, None) => "every date of service".to_owned(),
        (from, to) => format!(
            "dates of service {} to {}",
            from.map_or_else(|| "the first".to_owned(), |day| day.to_string()),
            to.map_or_else(|| "the last".to_owned(), |day| day.to_string())
        ),
    };
    let _ = writeln!(
        text,
        "Claims compared: {} ({range}); changed: {}, of which {} can still be submitted within the payer's filing limit as of {}",
        report.claims_compared,
        report.changed.len(),
        report.resubmittable(),
        scope.as_of
    );
    text.push('\n');
    text.push_str("Changed claims\n");
    let mut header: Vec<String> = CLAIM_COLUMNS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    header.push("resubmit".to_owned());
    let rows: Vec<Vec<String>> = report
        .changed
        .iter()
        .map(|claim| {
            let mut row = claim_row(claim, dollars);
            row.push(if claim.resubmittable { "yes" } else { "no" }.to_owned());
            row
        })
        .collect();
    aligned(&mut text, &header, &rows, &[9, 10, 11]);
    text.push('\n');
    text.push_str("Totals per clinic, payer and code (every claim compared)\n");
    let header: Vec<String> = TOTAL_COLUMNS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let rows: Vec<Vec<String>> = report
        .totals
        .iter()
        .map(|total| total_row(total, dollars))
        .collect();
    aligned(&mut text, &header, &rows, &[3, 4, 5, 6, 7, 8, 9]);
    text.push('\n');
    let timings = &report.timings;
    let _ = writeln!(
        text,
        "Replayed {} log positions in {:.2} s (reading the log {:.2} s, deriving twice and comparing {:.2} s)",
        report.log_positions,
        seconds(timings.total_ms),
        seconds(timings.read_log_ms),
        seconds(timings.derive_ms)
    );
    text
}

fn seconds(millis: u64) -> f64 {
    // Display only: a duration in seconds with two decimals.
    millis as f64 / 1000.0
}

/// Writes `rows` under `header` in columns padded to their widest cell; the columns in `numeric`
/// are right-aligned.
fn aligned(text: &mut String, header: &[String], rows: &[Vec<String>], numeric: &[usize]) {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            let width = widths[index];
            if numeric.contains(&index) {
                let _ = write!(line, "{cell:>width$}");
            } else {
                let _ = write!(line, "{cell:<width$}");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_keep_two_decimals_and_the_sign() {
        assert_eq!(dollars(123_456), "1234.56");
        assert_eq!(dollars(-5), "-0.05");
        assert_eq!(dollars(0), "0.00");
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        let mut text = String::new();
        csv_line(
            &mut text,
            &[
                "v2: 97110x1[GP,XU]".to_owned(),
                "say \"hi\"".to_owned(),
                "plain".to_owned(),
            ],
        );
        assert_eq!(text, "\"v2: 97110x1[GP,XU]\",\"say \"\"hi\"\"\",plain\n");
    }

    #[test]
    fn table_columns_line_up() {
        let mut text = String::new();
        let header = vec!["code".to_owned(), "units".to_owned()];
        let rows = vec![
            vec!["97140".to_owned(), "2".to_owned()],
            vec!["97124".to_owned(), "12".to_owned()],
        ];
        aligned(&mut text, &header, &rows, &[1]);
        assert_eq!(text, "code   units\n97140      2\n97124     12\n");
    }
}
