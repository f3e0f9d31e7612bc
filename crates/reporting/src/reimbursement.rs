//! Reimbursement by any of code × payer × clinic × month, and the top denial reasons, for one
//! chain: from the monthly rollups the projector keeps, or from the claim lines grouped at query
//! time (exact for any date range, and the baseline the benchmark compares the rollups with).
//!
//! Both sources are first shaped into the rollups' columns, so one outer query (filters, grouping,
//! sums) serves both and they cannot drift apart. The queries are built at run time from fixed
//! fragments only; every value is a bind parameter.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ReportError;
use crate::filter::{Dimension, ReportFilter, Source};

/// What to report: the filter, the grouping and the source.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    /// Range and filters.
    pub filter: ReportFilter,
    /// Grouping (empty: one total row).
    pub group_by: Vec<Dimension>,
    /// Rollups, lines, or whichever answers the range exactly and fastest.
    pub source: Source,
}

/// One group's reimbursement figures. Money is in cents.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReimbursementRow {
    /// The procedure code (when grouped by code).
    pub code: Option<String>,
    /// The payer (when grouped by payer).
    pub payer_id: Option<Uuid>,
    /// The payer's name.
    pub payer_name: Option<String>,
    /// The clinic (when grouped by clinic).
    pub clinic_id: Option<Uuid>,
    /// The clinic's name.
    pub clinic_name: Option<String>,
    /// The clinic's region (state).
    pub region: Option<String>,
    /// The first day of the month of service (when grouped by month).
    pub month: Option<NaiveDate>,
    /// Submitted lines.
    pub billed_lines: i64,
    /// Units on submitted lines.
    pub billed_units: i64,
    /// Charges on submitted lines.
    pub billed_cents: i64,
    /// Lines with a remittance.
    pub adjudicated_lines: i64,
    /// Adjudicated lines paid nothing.
    pub denied_lines: i64,
    /// Allowed amounts.
    pub allowed_cents: i64,
    /// Paid amounts.
    pub paid_cents: i64,
    /// Units the payer paid.
    pub paid_units: i64,
    /// Patient responsibility (deductible, co-insurance, co-pay).
    pub patient_responsibility_cents: i64,
    /// Lines paid something.
    pub paid_lines: i64,
    /// Σ days from date of service to adjudication over paid lines.
    pub days_to_payment_sum: i64,
    /// Code yield: paid per billed unit, rounded to the cent (none without billed units).
    pub paid_per_billed_unit_cents: Option<i64>,
    /// Denied lines per adjudicated line (none before any adjudication).
    pub denial_rate: Option<f64>,
    /// Average days from date of service to adjudication over paid lines.
    pub average_days_to_payment: Option<f64>,
}

/// A reimbursement report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReimbursementReport {
    /// First date of service.
    pub from: NaiveDate,
    /// Last date of service.
    pub to: NaiveDate,
    /// `rollups` or `lines`: what was read.
    pub source: String,
    /// The grouping, in column order.
    pub group_by: Vec<String>,
    /// One row per group, ordered by the grouping.
    pub rows: Vec<ReimbursementRow>,
}

/// One denial reason within a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DenialReasonRow {
    /// The procedure code (when grouped by code).
    pub code: Option<String>,
    /// The payer (when grouped by payer).
    pub payer_id: Option<Uuid>,
    /// The payer's name.
    pub payer_name: Option<String>,
    /// The clinic (when grouped by clinic).
    pub clinic_id: Option<Uuid>,
    /// The clinic's name.
    pub clinic_name: Option<String>,
    /// The month of service (when grouped by month).
    pub month: Option<NaiveDate>,
    /// Claim adjustment group code (CO, PR, OA, PI, CR).
    pub group_code: String,
    /// Claim adjustment reason code (CARC), e.g. 50 or 97.
    pub reason_code: String,
    /// Denied lines carrying this adjustment.
    pub lines: i64,
    /// The adjustments' amount.
    pub amount_cents: i64,
    /// 1 for the most frequent reason of its group.
    pub rank: i64,
}

/// The top denial reasons per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DenialReasonsReport {
    /// First date of service.
    pub from: NaiveDate,
    /// Last date of service.
    pub to: NaiveDate,
    /// `rollups` or `lines`.
    pub source: String,
    /// The grouping.
    pub group_by: Vec<String>,
    /// At most `limit` reasons per group, most frequent first.
    pub rows: Vec<DenialReasonRow>,
}

/// The claim lines shaped like `reimbursement_monthly`: one row per line of a submitted claim
/// (its latest submission) with its latest adjudication. A line counts as paid when something was
/// paid; days to payment run from the date of service to the claim's adjudication.
const LINES_AS_ROLLUP: &str = "
    SELECT l.chain_id,
           date_trunc('month', c.date_of_service)::date AS month,
           c.clinic_id, l.payer_id, l.code,
           1::bigint AS billed_lines,
           l.units::bigint AS billed_units,
           l.charge_cents AS billed_cents,
           (l.allowed_cents IS NOT NULL)::int::bigint AS adjudicated_lines,
           l.denied::int::bigint AS denied_lines,
           coalesce(l.allowed_cents, 0) AS allowed_cents,
           coalesce(l.paid_cents, 0) AS paid_cents,
           coalesce(l.paid_units, 0)::bigint AS paid_units,
           coalesce(l.patient_responsibility_cents, 0) AS patient_responsibility_cents,
           coalesce(l.paid_cents > 0, false)::int::bigint AS paid_lines,
           CASE WHEN l.paid_cents > 0 THEN c.adjudicated_on - c.date_of_service ELSE 0 END::bigint
               AS days_to_payment_sum
    FROM read_models.claim_line_outcomes l
    JOIN read_models.claims c
      ON c.chain_id = l.chain_id AND c.session_id = l.session_id AND c.payer_id = l.payer_id
    WHERE l.chain_id = $1 AND c.date_of_service BETWEEN $2 AND $3";

/// The monthly rollup; a month counts when it overlaps the range.
const ROLLUP: &str = "
    SELECT * FROM read_models.reimbursement_monthly
    WHERE chain_id = $1 AND month >= date_trunc('month', $2::date)::date AND month <= $3";

/// The chain-wide monthly rollup (no clinic dimension, kept from the per-clinic one by a trigger,
/// migration 0010), shaped like it with a NULL clinic: what chain-wide questions read.
const CHAIN_ROLLUP: &str = "
    SELECT chain_id, month, NULL::uuid AS clinic_id, payer_id, code, billed_lines, billed_units,
           billed_cents, adjudicated_lines, denied_lines, allowed_cents, paid_cents, paid_units,
           patient_responsibility_cents, paid_lines, days_to_payment_sum
    FROM read_models.reimbursement_monthly_chain
    WHERE chain_id = $1 AND month >= date_trunc('month', $2::date)::date AND month <= $3";

/// The per-clinic monthly rollup without payer and code (migration 0011), shaped like the full one
/// with NULL payer and code: what questions across clinics read when they do not split by payer or
/// code.
const CLINIC_ROLLUP: &str = "
    SELECT chain_id, month, clinic_id, NULL::uuid AS payer_id, NULL::text AS code, billed_lines,
           billed_units, billed_cents, adjudicated_lines, denied_lines, allowed_cents, paid_cents,
           paid_units, patient_responsibility_cents, paid_lines, days_to_payment_sum
    FROM read_models.reimbursement_monthly_clinic
    WHERE chain_id = $1 AND month >= date_trunc('month', $2::date)::date AND month <= $3";

/// The adjustments of denied lines shaped like `denial_reasons_monthly`: a line counts once per
/// distinct group and reason, with the amounts of repeated adjustments summed.
const DENIALS_FROM_LINES: &str = "
    SELECT l.chain_id,
           date_trunc('month', c.date_of_service)::date AS month,
           c.clinic_id, l.payer_id, l.code,
           adjustment.value->>'group' AS group_code,
           adjustment.value->>'reason' AS reason_code,
           1::bigint AS lines,
           sum((adjustment.value->>'amount_cents')::bigint)::bigint AS amount_cents
    FROM read_models.claim_line_outcomes l
    JOIN read_models.claims c
      ON c.chain_id = l.chain_id AND c.session_id = l.session_id AND c.payer_id = l.payer_id
    CROSS JOIN LATERAL jsonb_array_elements(l.adjustments) AS adjustment(value)
    WHERE l.chain_id = $1 AND l.denied AND c.date_of_service BETWEEN $2 AND $3
    GROUP BY l.chain_id, l.session_id, l.payer_id, l.line_number, c.date_of_service, c.clinic_id,
             l.code, adjustment.value->>'group', adjustment.value->>'reason'";

/// The monthly denial-reason rollup.
const DENIAL_ROLLUP: &str = "
    SELECT * FROM read_models.denial_reasons_monthly
    WHERE chain_id = $1 AND month >= date_trunc('month', $2::date)::date AND month <= $3";

/// The filters every report applies to its relation `r` ($4 clinics, $5 region, $6 payer, $7 code).
const FILTERS: &str = "
    r.chain_id = $1
    AND ($4::uuid[] IS NULL OR r.clinic_id = ANY($4))
    AND ($5::text IS NULL OR r.clinic_id IN (
        SELECT k.clinic_id FROM read_models.clinics k WHERE k.chain_id = $1 AND k.state = $5))
    AND ($6::uuid IS NULL OR r.payer_id = $6)
    AND ($7::text IS NULL OR r.code = $7)";

const SUMS: [&str; 11] = [
    "billed_lines",
    "billed_units",
    "billed_cents",
    "adjudicated_lines",
    "denied_lines",
    "allowed_cents",
    "paid_cents",
    "paid_units",
    "patient_responsibility_cents",
    "paid_lines",
    "days_to_payment_sum",
];

/// `r.code AS code, NULL::uuid AS payer_id, ...`: every dimension column, NULL when not grouped.
fn dimension_columns(group_by: &[Dimension]) -> String {
    Dimension::ALL
        .into_iter()
        .map(|dimension| {
            let column = dimension.column();
            if group_by.contains(&dimension) {
                format!("r.{column} AS {column}")
            } else {
                let sql_type = match dimension {
                    Dimension::Code => "text",
                    Dimension::Payer | Dimension::Clinic => "uuid",
                    Dimension::Month => "date",
                };
                format!("NULL::{sql_type} AS {column}")
            }
        })
        .collect::<Vec<String>>()
        .join(", ")
}

fn grouped_columns(group_by: &[Dimension], prefix: &str) -> Vec<String> {
    group_by
        .iter()
        .map(|dimension| format!("{prefix}{}", dimension.column()))
        .collect()
}

/// Whether the question spans every clinic of the chain: no clinic grouping, no clinic or region
/// filter (a clinic-scoped key always has a clinic filter).
fn is_chain_wide(query: &ReportQuery) -> bool {
    !query.group_by.contains(&Dimension::Clinic)
        && query.filter.clinics.is_none()
        && query.filter.region.is_none()
}

/// Whether the question neither splits nor filters by payer or code.
fn ignores_payer_and_code(query: &ReportQuery) -> bool {
    !query.group_by.contains(&Dimension::Payer)
        && !query.group_by.contains(&Dimension::Code)
        && query.filter.payer.is_none()
        && query.filter.code.is_none()
}

fn reimbursement_sql(query: &ReportQuery, source: Source) -> String {
    let relation = match source {
        Source::Lines => LINES_AS_ROLLUP,
        Source::Rollups | Source::Auto if is_chain_wide(query) => CHAIN_ROLLUP,
        Source::Rollups | Source::Auto if ignores_payer_and_code(query) => CLINIC_ROLLUP,
        Source::Rollups | Source::Auto => ROLLUP,
    };
    let sums = SUMS
        .iter()
        .map(|column| format!("coalesce(sum(r.{column}), 0)::bigint AS {column}"))
        .collect::<Vec<String>>()
        .join(", ");
    let grouped = grouped_columns(&query.group_by, "r.");
    let (group_by, order_by) = if grouped.is_empty() {
        (String::new(), String::new())
    } else {
        let list = grouped.join(", ");
        (format!("GROUP BY {list}"), format!("ORDER BY {list}"))
    };
    format!(
        "WITH r AS ({relation}) SELECT {dimensions}, {sums} FROM r WHERE {FILTERS} {group_by} {order_by}",
        dimensions = dimension_columns(&query.group_by),
    )
}

fn denial_sql(query: &ReportQuery, source: Source) -> String {
    let relation = match source {
        Source::Lines => DENIALS_FROM_LINES,
        Source::Rollups | Source::Auto => DENIAL_ROLLUP,
    };
    let mut grouped = grouped_columns(&query.group_by, "r.");
    let partition = grouped_columns(&query.group_by, "g.");
    let partition = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {}", partition.join(", "))
    };
    let order = grouped_columns(&query.group_by, "ranked.")
        .into_iter()
        .chain(["ranked.rank".to_owned()])
        .collect::<Vec<String>>()
        .join(", ");
    grouped.extend(["r.group_code".to_owned(), "r.reason_code".to_owned()]);
    format!(
        "WITH r AS ({relation}),
         g AS (SELECT {dimensions}, r.group_code, r.reason_code,
                      sum(r.lines)::bigint AS lines, sum(r.amount_cents)::bigint AS amount_cents
               FROM r WHERE {FILTERS} GROUP BY {grouped})
         SELECT * FROM (
             SELECT g.*, row_number() OVER ({partition}
                 ORDER BY g.lines DESC, g.amount_cents DESC, g.group_code, g.reason_code) AS rank
             FROM g) ranked
         WHERE ranked.rank <= $8 ORDER BY {order}",
        dimensions = dimension_columns(&query.group_by),
        grouped = grouped.join(", "),
    )
}

fn bind_filter<'q>(
    statement: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    chain: Uuid,
    filter: &'q ReportFilter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    statement
        .bind(chain)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.clinics.as_deref())
        .bind(filter.region.as_deref())
        .bind(filter.payer)
        .bind(filter.code.as_deref())
}

/// Names of the chain's payers and clinics, and the clinics' regions.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    payers: HashMap<Uuid, String>,
    clinics: HashMap<Uuid, (String, String)>,
}

impl Directory {
    pub(crate) async fn load(
        connection: &mut PgConnection,
        chain: Uuid,
        group_by: &[Dimension],
    ) -> Result<Directory, ReportError> {
        let mut directory = Directory::default();
        if group_by.contains(&Dimension::Payer) {
            let rows: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT payer_id, name FROM read_models.payers WHERE chain_id = $1")
                    .bind(chain)
                    .fetch_all(&mut *connection)
                    .await?;
            directory.payers = rows.into_iter().collect();
        }
        if group_by.contains(&Dimension::Clinic) {
            let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
                "SELECT clinic_id, name, state FROM read_models.clinics WHERE chain_id = $1",
            )
            .bind(chain)
            .fetch_all(&mut *connection)
            .await?;
            directory.clinics = rows
                .into_iter()
                .map(|(id, name, state)| (id, (name, state)))
                .collect();
        }
        Ok(directory)
    }

    pub(crate) fn payer_name(&self, payer: Option<Uuid>) -> Option<String> {
        payer.and_then(|payer| self.payers.get(&payer).cloned())
    }

    pub(crate) fn clinic(&self, clinic: Option<Uuid>) -> (Option<String>, Option<String>) {
        match clinic.and_then(|clinic| self.clinics.get(&clinic)) {
            Some((name, state)) => (Some(name.clone()), Some(state.clone())),
            None => (None, None),
        }
    }
}

/// `numerator / denominator` rounded half away from zero; none for a zero denominator.
pub fn rounded_ratio(numerator: i64, denominator: i64) -> Option<i64> {
    if denominator == 0 {
        return None;
    }
    let (numerator, denominator) = (i128::from(numerator), i128::from(denominator));
    let doubled = 2 * numerator.abs() + denominator.abs();
    let magnitude = doubled / (2 * denominator.abs());
    let signed = if (numerator < 0) != (denominator < 0) {
        -magnitude
    } else {
        magnitude
    };
    i64::try_from(signed).ok()
}

/// `numerator / denominator` rounded to `places` decimals, for rates and averages (never money).
fn fraction(numerator: i64, denominator: i64, places: i32) -> Option<f64> {
    if denominator == 0 {
        return None;
    }
    let scale = 10_f64.powi(places);
    // Counts stay far below 2^53, so the conversions are exact.
    #[allow(clippy::cast_precision_loss)]
    let value = numerator as f64 / denominator as f64;
    Some((value * scale).round() / scale)
}

/// The reimbursement report for `chain`, on a connection inside [`crate::scope::begin_chain_read`].
pub async fn reimbursement(
    connection: &mut PgConnection,
    chain: Uuid,
    query: &ReportQuery,
) -> Result<ReimbursementReport, ReportError> {
    query.filter.validate()?;
    let source = query.source.resolve(&query.filter);
    let sql = reimbursement_sql(query, source);
    let rows = bind_filter(sqlx::query(&sql), chain, &query.filter)
        .fetch_all(&mut *connection)
        .await?;
    let directory = Directory::load(connection, chain, &query.group_by).await?;
    let rows = rows
        .iter()
        .map(|row| {
            let payer_id: Option<Uuid> = row.try_get("payer_id")?;
            let clinic_id: Option<Uuid> = row.try_get("clinic_id")?;
            let (clinic_name, region) = directory.clinic(clinic_id);
            let sum = |column: &str| row.try_get::<i64, _>(column);
            let (billed_units, paid_cents) = (sum("billed_units")?, sum("paid_cents")?);
            let (adjudicated_lines, denied_lines) =
                (sum("adjudicated_lines")?, sum("denied_lines")?);
            let (paid_lines, days_to_payment_sum) =
                (sum("paid_lines")?, sum("days_to_payment_sum")?);
            Ok(ReimbursementRow {
                code: row.try_get("code")?,
                payer_id,
                payer_name: directory.payer_name(payer_id),
                clinic_id,
                clinic_name,
                region,
                month: row.try_get("month")?,
                billed_lines: sum("billed_lines")?,
                billed_units,
                billed_cents: sum("billed_cents")?,
                adjudicated_lines,
                denied_lines,
                allowed_cents: sum("allowed_cents")?,
                paid_cents,
                paid_units: sum("paid_units")?,
                patient_responsibility_cents: sum("patient_responsibility_cents")?,
                paid_lines,
                days_to_payment_sum,
                paid_per_billed_unit_cents: rounded_ratio(paid_cents, billed_units),
                denial_rate: fraction(denied_lines, adjudicated_lines, 4),
                average_days_to_payment: fraction(days_to_payment_sum, paid_lines, 1),
            })
        })
        .collect::<Result<Vec<ReimbursementRow>, sqlx::Error>>()?;
    Ok(ReimbursementReport {
        from: query.filter.from,
        to: query.filter.to,
        source: source.as_str().to_owned(),
        group_by: dimension_names(&query.group_by),
        rows,
    })
}

/// The `limit` most frequent denial reasons per group, for `chain`.
pub async fn denial_reasons(
    connection: &mut PgConnection,
    chain: Uuid,
    query: &ReportQuery,
    limit: i64,
) -> Result<DenialReasonsReport, ReportError> {
    query.filter.validate()?;
    if !(1..=100).contains(&limit) {
        return Err(ReportError::invalid("limit", "must be between 1 and 100"));
    }
    let source = query.source.resolve(&query.filter);
    let sql = denial_sql(query, source);
    let rows = bind_filter(sqlx::query(&sql), chain, &query.filter)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?;
    let directory = Directory::load(connection, chain, &query.group_by).await?;
    let rows = rows
        .iter()
        .map(|row| {
            let payer_id: Option<Uuid> = row.try_get("payer_id")?;
            let clinic_id: Option<Uuid> = row.try_get("clinic_id")?;
            Ok(DenialReasonRow {
                code: row.try_get("code")?,
                payer_id,
                payer_name: directory.payer_name(payer_id),
                clinic_id,
                clinic_name: directory.clinic(clinic_id).0,
                month: row.try_get("month")?,
                group_code: row.try_get("group_code")?,
                reason_code: row.try_get("reason_code")?,
                lines: row.try_get("lines")?,
                amount_cents: row.try_get("amount_cents")?,
                rank: row.try_get("rank")?,
            })
        })
        .collect::<Result<Vec<DenialReasonRow>, sqlx::Error>>()?;
    Ok(DenialReasonsReport {
        from: query.filter.from,
        to: query.filter.to,
        source: source.as_str().to_owned(),
        group_by: dimension_names(&query.group_by),
        rows,
    })
}

fn dimension_names(group_by: &[Dimension]) -> Vec<String> {
    group_by
        .iter()
        .map(|dimension| dimension.as_str().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ratios_when_rounded_then_halves_round_away_from_zero() {
        assert_eq!(rounded_ratio(10, 4), Some(3));
        assert_eq!(rounded_ratio(9, 4), Some(2));
        assert_eq!(rounded_ratio(-10, 4), Some(-3));
        assert_eq!(rounded_ratio(7, 0), None);
    }

    #[test]
    fn given_no_grouping_when_built_then_the_query_has_no_group_by() {
        let filter = ReportFilter::new(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        )
        .unwrap();
        let query = ReportQuery {
            filter,
            group_by: Vec::new(),
            source: Source::Auto,
        };
        assert!(!reimbursement_sql(&query, Source::Rollups).contains("GROUP BY"));
        assert!(!denial_sql(&query, Source::Lines).contains("PARTITION BY"));
    }

    #[test]
    fn given_a_chain_wide_question_then_the_chain_rollup_answers_it() {
        let filter = ReportFilter::new(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        )
        .unwrap();
        let mut query = ReportQuery {
            filter,
            group_by: vec![Dimension::Code, Dimension::Payer],
            source: Source::Auto,
        };
        assert!(reimbursement_sql(&query, Source::Rollups).contains("reimbursement_monthly_chain"));
        query.group_by.push(Dimension::Clinic);
        assert!(
            !reimbursement_sql(&query, Source::Rollups).contains("reimbursement_monthly_chain")
        );
        query.group_by.pop();
        query.filter.region = Some("NY".to_owned());
        assert!(
            !reimbursement_sql(&query, Source::Rollups).contains("reimbursement_monthly_chain")
        );
    }
}
