//! Reports as tables: CSV for export (the HTTP API's `?format=csv`, `claimledger report --format
//! csv`) and aligned text for the terminal. Money stays integer cents in CSV, so that a spreadsheet
//! sums it exactly; the terminal shows dollars.

use std::fmt::Write as _;

use crate::insights::{BestCodeReport, Metric, OutliersReport};
use crate::reimbursement::{DenialReasonsReport, ReimbursementReport};

/// One value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing (a dimension not grouped by, a ratio without a denominator).
    Empty,
    /// Text.
    Text(String),
    /// A count.
    Count(i64),
    /// Money in cents.
    Cents(i64),
    /// A decimal (rates, averages, z-scores) with its number of places.
    Decimal(f64, usize),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => csv_field(text),
            Cell::Count(value) | Cell::Cents(value) => value.to_string(),
            Cell::Decimal(value, places) => format!("{value:.places$}"),
        }
    }

    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Count(value) => value.to_string(),
            Cell::Cents(cents) => dollars(*cents),
            Cell::Decimal(value, places) => format!("{value:.places$}"),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Count(_) | Cell::Cents(_) | Cell::Decimal(..))
    }
}

/// A table: named columns and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names (CSV headers; `_cents` columns hold cents).
    pub columns: Vec<&'static str>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// RFC 4180 CSV with a header line, CRLF line ends.
    pub fn to_csv(&self) -> String {
        let mut out = self.columns.join(",");
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(Cell::csv).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// Aligned columns for a terminal: numbers right-aligned, text left-aligned, dollars for cents.
    pub fn to_text(&self) -> String {
        let headers: Vec<String> = self
            .columns
            .iter()
            .map(|column| column.strip_suffix("_cents").unwrap_or(column).to_owned())
            .collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(Cell::text).collect())
            .collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|index| {
                cells
                    .iter()
                    .map(|row| row[index].chars().count())
                    .chain([headers[index].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, values: &[String], numeric: &dyn Fn(usize) -> bool| {
            let mut text = String::new();
            for (index, value) in values.iter().enumerate() {
                if index > 0 {
                    text.push_str("  ");
                }
                let width = widths[index];
                if numeric(index) {
                    let _ = write!(text, "{value:>width$}");
                } else {
                    let _ = write!(text, "{value:<width$}");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        let numeric_column = |index: usize| {
            self.rows
                .iter()
                .any(|row| row.get(index).is_some_and(Cell::is_numeric))
        };
        line(&mut out, &headers, &numeric_column);
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        line(&mut out, &rule, &|_| false);
        for row in &cells {
            line(&mut out, row, &numeric_column);
        }
        if self.rows.is_empty() {
            out.push_str("(no rows)\n");
        }
        out
    }
}

/// `$1,234.56` (and `-$0.05`).
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let magnitude = cents.unsigned_abs();
    let whole = (magnitude / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}${grouped}.{:02}", magnitude % 100)
}

fn csv_field(text: &str) -> String {
    // A leading formula character is neutralised so that a name like "=HYPERLINK(...)" cannot run
    // in a spreadsheet that opens the export.
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn text<T: ToString>(value: Option<T>) -> Cell {
    value.map_or(Cell::Empty, |value| Cell::Text(value.to_string()))
}

fn decimal(value: Option<f64>, places: usize) -> Cell {
    value.map_or(Cell::Empty, |value| Cell::Decimal(value, places))
}

impl From<&ReimbursementReport> for Table {
    fn from(report: &ReimbursementReport) -> Table {
        Table {
            columns: vec![
                "code",
                "payer_id",
                "payer",
                "clinic_id",
                "clinic",
                "region",
                "month",
                "billed_lines",
                "billed_units",
                "billed_cents",
                "allowed_cents",
                "paid_cents",
                "patient_responsibility_cents",
                "paid_per_billed_unit_cents",
                "adjudicated_lines",
                "denied_lines",
                "denial_rate",
                "average_days_to_payment",
            ],
            rows: report
                .rows
                .iter()
                .map(|row| {
                    vec![
                        text(row.code.as_ref()),
                        text(row.payer_id),
                        text(row.payer_name.as_ref()),
                        text(row.clinic_id),
                        text(row.clinic_name.as_ref()),
                        text(row.region.as_ref()),
                        text(row.month.map(|month| month.format("%Y-%m"))),
                        Cell::Count(row.billed_lines),
                        Cell::Count(row.billed_units),
                        Cell::Cents(row.billed_cents),
                        Cell::Cents(row.allowed_cents),
                        Cell::Cents(row.paid_cents),
                        Cell::Cents(row.patient_responsibility_cents),
                        row.paid_per_billed_unit_cents
                            .map_or(Cell::Empty, Cell::Cents),
                        Cell::Count(row.adjudicated_lines),
                        Cell::Count(row.denied_lines),
                        decimal(row.denial_rate, 4),
                        decimal(row.average_days_to_payment, 1),
                    ]
                })
                .collect(),
        }
        .without_empty_dimensions(7)
    }
}

impl Table {
    /// Drops the first `dimensions` columns where every row is empty (dimensions not grouped by).
    fn without_empty_dimensions(mut self, dimensions: usize) -> Table {
        let keep: Vec<bool> = (0..self.columns.len())
            .map(|index| {
                index >= dimensions || self.rows.iter().any(|row| row[index] != Cell::Empty)
            })
            .collect();
        let mut index = 0;
        self.columns.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        for row in &mut self.rows {
            let mut index = 0;
            row.retain(|_| {
                index += 1;
                keep[index - 1]
            });
        }
        self
    }
}

impl From<&DenialReasonsReport> for Table {
    fn from(report: &DenialReasonsReport) -> Table {
        Table {
            columns: vec![
                "code",
                "payer_id",
                "payer",
                "clinic_id",
                "clinic",
                "month",
                "rank",
                "group_code",
                "reason_code",
                "lines",
                "amount_cents",
            ],
            rows: report
                .rows
                .iter()
                .map(|row| {
                    vec![
                        text(row.code.as_ref()),
                        text(row.payer_id),
                        text(row.payer_name.as_ref()),
                        text(row.clinic_id),
                        text(row.clinic_name.as_ref()),
                        text(row.month.map(|month| month.format("%Y-%m"))),
                        Cell::Count(row.rank),
                        Cell::Text(row.group_code.clone()),
                        Cell::Text(row.reason_code.clone()),
                        Cell::Count(row.lines),
                        Cell::Cents(row.amount_cents),
                    ]
                })
                .collect(),
        }
        .without_empty_dimensions(6)
    }
}

impl From<&BestCodeReport> for Table {
    fn from(report: &BestCodeReport) -> Table {
        let mut rows = Vec::new();
        for payer in &report.payers {
            for code in &payer.codes {
                rows.push(vec![
                    Cell::Text(payer.payer_id.to_string()),
                    text(payer.payer_name.as_ref()),
                    Cell::Text(code.code.clone()),
                    Cell::Text(
                        if payer.best_code.as_deref() == Some(code.code.as_str()) {
                            "best"
                        } else if code.sufficient_evidence {
                            ""
                        } else {
                            "too few lines"
                        }
                        .to_owned(),
                    ),
                    code.paid_per_billed_unit_cents
                        .map_or(Cell::Empty, Cell::Cents),
                    Cell::Count(code.billed_units),
                    Cell::Cents(code.paid_cents),
                    Cell::Count(code.adjudicated_lines),
                    Cell::Count(code.denied_lines),
                ]);
            }
        }
        Table {
            columns: vec![
                "payer_id",
                "payer",
                "code",
                "verdict",
                "paid_per_billed_unit_cents",
                "billed_units",
                "paid_cents",
                "adjudicated_lines",
                "denied_lines",
            ],
            rows,
        }
    }
}

impl From<&OutliersReport> for Table {
    fn from(report: &OutliersReport) -> Table {
        Table {
            columns: vec![
                "clinic_id",
                "clinic",
                "metric",
                "code",
                "value",
                "peer_mean",
                "peer_stddev",
                "peers",
                "z",
                "adjudicated_lines",
            ],
            rows: report
                .outliers
                .iter()
                .map(|outlier| {
                    let places = match outlier.metric {
                        Metric::CodeYield => 0,
                        Metric::DenialRate => 4,
                    };
                    vec![
                        Cell::Text(outlier.clinic_id.to_string()),
                        text(outlier.clinic_name.as_ref()),
                        Cell::Text(
                            match outlier.metric {
                                Metric::CodeYield => "code_yield",
                                Metric::DenialRate => "denial_rate",
                            }
                            .to_owned(),
                        ),
                        text(outlier.code.as_ref()),
                        Cell::Decimal(outlier.value, places),
                        Cell::Decimal(outlier.peer_mean, places.max(1)),
                        Cell::Decimal(outlier.peer_stddev, places.max(1)),
                        #[allow(clippy::cast_possible_wrap)]
                        Cell::Count(outlier.peers as i64),
                        Cell::Decimal(outlier.z, 2),
                        Cell::Count(outlier.adjudicated_lines),
                    ]
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_cents_when_shown_then_dollars_are_grouped() {
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(-5), "-$0.05");
        assert_eq!(dollars(100_000), "$1,000.00");
    }

    #[test]
    fn given_awkward_text_when_written_as_csv_then_it_is_quoted_and_defused() {
        assert_eq!(csv_field("Acme, \"North\""), "\"Acme, \"\"North\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn given_a_table_when_rendered_as_text_then_numbers_align_right() {
        let table = Table {
            columns: vec!["code", "paid_cents"],
            rows: vec![
                vec![Cell::Text("97140".into()), Cell::Cents(123_456)],
                vec![Cell::Text("97124".into()), Cell::Cents(5)],
            ],
        };
        assert_eq!(
            table.to_text(),
            "code        paid\n-----  ---------\n97140  $1,234.56\n97124      $0.05\n"
        );
        assert_eq!(
            table.to_csv(),
            "code,paid_cents\r\n97140,123456\r\n97124,5\r\n"
        );
    }
}
