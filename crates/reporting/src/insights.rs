//! Conclusions drawn from the reimbursement figures: the best code per payer from observed
//! payments, and the clinics whose code yield or denial rate stands out from the rest of the chain.
//!
//! **Best code.** Per payer, each code's yield is paid cents per billed unit over the range; the best
//! code is the highest yield among codes with at least `min_lines` adjudicated lines (ties: more
//! evidence, then the code). Codes with less evidence are listed and marked, never chosen.
//!
//! **Outliers.** A clinic stands out when its figure is at least `z_threshold` standard deviations
//! from the *other* clinics' mean (leave-one-out: the clinic under test does not inflate the spread
//! it is measured against, so one extreme clinic among a few cannot hide itself). Compared per code
//! for yield and over all codes for the denial rate, only for clinics with at least `min_lines`
//! adjudicated lines, and only when at least [`MIN_PEERS`] other clinics qualify. The spread has a
//! floor (1 cent of yield, 1 percentage point of denial rate) so that near-identical peers do not
//! turn a trivial difference into a huge z. Defaults: z ≥ 3, 20 lines.

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ReportError;
use crate::filter::{Dimension, ReportFilter, Source};
use crate::reimbursement::{ReimbursementRow, ReportQuery, reimbursement};

/// The fewest other clinics an outlier test compares with.
pub const MIN_PEERS: usize = 3;
/// The default evidence a code or clinic needs.
pub const DEFAULT_MIN_LINES: i64 = 20;
/// The default z-score from which a clinic stands out.
pub const DEFAULT_Z_THRESHOLD: f64 = 3.0;
/// The floor of the peers' spread of yield, in cents per unit.
const YIELD_SPREAD_FLOOR: f64 = 1.0;
/// The floor of the peers' spread of denial rate.
const DENIAL_SPREAD_FLOOR: f64 = 0.01;

/// How much evidence a conclusion needs and how far out an outlier is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Adjudicated lines a code (best code) or clinic (outliers) needs.
    pub min_lines: i64,
    /// |z| from which a clinic stands out.
    pub z_threshold: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_lines: DEFAULT_MIN_LINES,
            z_threshold: DEFAULT_Z_THRESHOLD,
        }
    }
}

impl Thresholds {
    /// Refuses values that would make the conclusions meaningless.
    pub fn validate(&self) -> Result<(), ReportError> {
        if self.min_lines < 1 {
            return Err(ReportError::invalid("min_lines", "must be at least 1"));
        }
        if !(self.z_threshold.is_finite() && self.z_threshold > 0.0) {
            return Err(ReportError::invalid(
                "z_threshold",
                "must be a positive number",
            ));
        }
        Ok(())
    }
}

/// One code's observed yield at one payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CodeYield {
    /// The procedure code.
    pub code: String,
    /// Paid cents per billed unit.
    pub paid_per_billed_unit_cents: Option<i64>,
    /// Billed units.
    pub billed_units: i64,
    /// Paid cents.
    pub paid_cents: i64,
    /// Adjudicated lines: the evidence.
    pub adjudicated_lines: i64,
    /// Denied lines.
    pub denied_lines: i64,
    /// Whether the evidence reaches `min_lines`.
    pub sufficient_evidence: bool,
}

/// The best code at one payer, with every code's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BestCode {
    /// The payer.
    pub payer_id: Uuid,
    /// Its name.
    pub payer_name: Option<String>,
    /// The best-paying code with enough evidence (none when no code has enough).
    pub best_code: Option<String>,
    /// Every code billed to the payer, best first (codes without enough evidence last).
    pub codes: Vec<CodeYield>,
}

/// The best code per payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BestCodeReport {
    /// First date of service.
    pub from: chrono::NaiveDate,
    /// Last date of service.
    pub to: chrono::NaiveDate,
    /// `rollups` or `lines`.
    pub source: String,
    /// The evidence a code needed.
    pub min_lines: i64,
    /// One entry per payer.
    pub payers: Vec<BestCode>,
}

/// What an outlier stands out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Paid cents per billed unit of one code.
    CodeYield,
    /// Denied lines per adjudicated line, all codes.
    DenialRate,
}

/// A clinic that stands out from the chain.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Outlier {
    /// The clinic.
    pub clinic_id: Uuid,
    /// Its name.
    pub clinic_name: Option<String>,
    /// What stands out.
    pub metric: Metric,
    /// The code, for a code yield.
    pub code: Option<String>,
    /// The clinic's value (cents per unit, or a fraction).
    pub value: f64,
    /// The other clinics' mean.
    pub peer_mean: f64,
    /// The other clinics' standard deviation (after the floor).
    pub peer_stddev: f64,
    /// How many other clinics were compared.
    pub peers: usize,
    /// (value − peer mean) / peer standard deviation.
    pub z: f64,
    /// The clinic's adjudicated lines.
    pub adjudicated_lines: i64,
}

/// The clinics that stand out.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OutliersReport {
    /// First date of service.
    pub from: chrono::NaiveDate,
    /// Last date of service.
    pub to: chrono::NaiveDate,
    /// `rollups` or `lines`.
    pub source: String,
    /// The evidence a clinic needed.
    pub min_lines: i64,
    /// The |z| from which a clinic stands out.
    pub z_threshold: f64,
    /// Largest |z| first.
    pub outliers: Vec<Outlier>,
}

/// The best code per payer for `chain`.
pub async fn best_code(
    connection: &mut PgConnection,
    chain: Uuid,
    filter: &ReportFilter,
    source: Source,
    thresholds: Thresholds,
) -> Result<BestCodeReport, ReportError> {
    thresholds.validate()?;
    let query = ReportQuery {
        filter: filter.clone(),
        group_by: vec![Dimension::Code, Dimension::Payer],
        source,
    };
    let report = reimbursement(connection, chain, &query).await?;
    let mut payers: Vec<BestCode> = Vec::new();
    for row in report.rows {
        let (Some(payer_id), Some(code)) = (row.payer_id, row.code.clone()) else {
            continue;
        };
        let entry = match payers
            .iter_mut()
            .position(|entry| entry.payer_id == payer_id)
        {
            Some(index) => &mut payers[index],
            None => {
                payers.push(BestCode {
                    payer_id,
                    payer_name: row.payer_name.clone(),
                    best_code: None,
                    codes: Vec::new(),
                });
                payers.last_mut().expect("just pushed")
            }
        };
        entry.codes.push(CodeYield {
            code,
            paid_per_billed_unit_cents: row.paid_per_billed_unit_cents,
            billed_units: row.billed_units,
            paid_cents: row.paid_cents,
            adjudicated_lines: row.adjudicated_lines,
            denied_lines: row.denied_lines,
            sufficient_evidence: row.adjudicated_lines >= thresholds.min_lines,
        });
    }
    for entry in &mut payers {
        entry.codes.sort_by(|left, right| {
            right
                .sufficient_evidence
                .cmp(&left.sufficient_evidence)
                .then(
                    right
                        .paid_per_billed_unit_cents
                        .cmp(&left.paid_per_billed_unit_cents),
                )
                .then(right.adjudicated_lines.cmp(&left.adjudicated_lines))
                .then(left.code.cmp(&right.code))
        });
        entry.best_code = entry
            .codes
            .first()
            .filter(|code| code.sufficient_evidence && code.paid_per_billed_unit_cents.is_some())
            .map(|code| code.code.clone());
    }
    payers.sort_by(|left, right| {
        left.payer_name
            .cmp(&right.payer_name)
            .then(left.payer_id.cmp(&right.payer_id))
    });
    Ok(BestCodeReport {
        from: report.from,
        to: report.to,
        source: report.source,
        min_lines: thresholds.min_lines,
        payers,
    })
}

/// The clinics of `chain` whose code yield or denial rate stands out.
pub async fn outliers(
    connection: &mut PgConnection,
    chain: Uuid,
    filter: &ReportFilter,
    source: Source,
    thresholds: Thresholds,
) -> Result<OutliersReport, ReportError> {
    thresholds.validate()?;
    let by_clinic_and_code = reimbursement(
        connection,
        chain,
        &ReportQuery {
            filter: filter.clone(),
            group_by: vec![Dimension::Code, Dimension::Clinic],
            source,
        },
    )
    .await?;
    let by_clinic = reimbursement(
        connection,
        chain,
        &ReportQuery {
            filter: filter.clone(),
            group_by: vec![Dimension::Clinic],
            source,
        },
    )
    .await?;
    let mut found = Vec::new();
    let mut codes: Vec<&str> = by_clinic_and_code
        .rows
        .iter()
        .filter_map(|row| row.code.as_deref())
        .collect();
    codes.dedup();
    for code in codes {
        let samples: Vec<Sample> = by_clinic_and_code
            .rows
            .iter()
            .filter(|row| row.code.as_deref() == Some(code))
            .filter_map(|row| {
                #[allow(clippy::cast_precision_loss)]
                let value = row.paid_per_billed_unit_cents? as f64;
                Sample::of(row, value, thresholds)
            })
            .collect();
        found.extend(
            leave_one_out(&samples, thresholds.z_threshold, YIELD_SPREAD_FLOOR)
                .into_iter()
                .map(|(sample, comparison)| {
                    comparison.outlier(sample, Metric::CodeYield, Some(code.to_owned()))
                }),
        );
    }
    let samples: Vec<Sample> = by_clinic
        .rows
        .iter()
        .filter_map(|row| Sample::of(row, row.denial_rate?, thresholds))
        .collect();
    found.extend(
        leave_one_out(&samples, thresholds.z_threshold, DENIAL_SPREAD_FLOOR)
            .into_iter()
            .map(|(sample, comparison)| comparison.outlier(sample, Metric::DenialRate, None)),
    );
    found.sort_by(|left, right| right.z.abs().total_cmp(&left.z.abs()));
    Ok(OutliersReport {
        from: by_clinic.from,
        to: by_clinic.to,
        source: by_clinic.source,
        min_lines: thresholds.min_lines,
        z_threshold: thresholds.z_threshold,
        outliers: found,
    })
}

/// One clinic's value of a metric.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    clinic_id: Uuid,
    clinic_name: Option<String>,
    value: f64,
    adjudicated_lines: i64,
}

impl Sample {
    fn of(row: &ReimbursementRow, value: f64, thresholds: Thresholds) -> Option<Sample> {
        if row.adjudicated_lines < thresholds.min_lines {
            return None;
        }
        Some(Sample {
            clinic_id: row.clinic_id?,
            clinic_name: row.clinic_name.clone(),
            value,
            adjudicated_lines: row.adjudicated_lines,
        })
    }
}

/// One clinic against its peers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Comparison {
    mean: f64,
    stddev: f64,
    peers: usize,
    z: f64,
}

impl Comparison {
    fn outlier(self, sample: &Sample, metric: Metric, code: Option<String>) -> Outlier {
        Outlier {
            clinic_id: sample.clinic_id,
            clinic_name: sample.clinic_name.clone(),
            metric,
            code,
            value: sample.value,
            peer_mean: self.mean,
            peer_stddev: self.stddev,
            peers: self.peers,
            z: self.z,
            adjudicated_lines: sample.adjudicated_lines,
        }
    }
}

/// The samples at least `threshold` sample standard deviations (floored at `floor`) from the mean
/// of all the other samples.
fn leave_one_out(samples: &[Sample], threshold: f64, floor: f64) -> Vec<(&Sample, Comparison)> {
    if samples.len() < MIN_PEERS + 1 {
        return Vec::new();
    }
    samples
        .iter()
        .enumerate()
        .filter_map(|(index, sample)| {
            let peers: Vec<f64> = samples
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, peer)| peer.value)
                .collect();
            #[allow(clippy::cast_precision_loss)]
            let count = peers.len() as f64;
            let mean = peers.iter().sum::<f64>() / count;
            let variance = peers
                .iter()
                .map(|value| (value - mean).powi(2))
                .sum::<f64>()
                / (count - 1.0);
            let stddev = variance.sqrt().max(floor);
            let z = (sample.value - mean) / stddev;
            (z.abs() >= threshold).then_some((
                sample,
                Comparison {
                    mean,
                    stddev,
                    peers: peers.len(),
                    z,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| Sample {
                clinic_id: Uuid::from_u128(index as u128 + 1),
                clinic_name: None,
                value: *value,
                adjudicated_lines: 50,
            })
            .collect()
    }

    #[test]
    fn given_one_extreme_clinic_among_four_when_compared_then_only_it_stands_out() {
        // With the population z-score a lone outlier among four could never exceed 1.5.
        let samples = samples(&[1000.0, 1010.0, 990.0, 400.0]);
        let found = leave_one_out(&samples, 3.0, YIELD_SPREAD_FLOOR);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.value, 400.0);
        assert!((found[0].1.mean - 1000.0).abs() < 1e-9);
        assert!(found[0].1.z < -50.0);
    }

    #[test]
    fn given_too_few_peers_when_compared_then_nothing_is_concluded() {
        assert!(leave_one_out(&samples(&[1000.0, 1000.0, 10.0]), 3.0, 1.0).is_empty());
    }

    #[test]
    fn given_identical_peers_when_a_clinic_differs_by_a_cent_then_the_floor_keeps_it_unremarkable()
    {
        let samples = samples(&[1000.0, 1000.0, 1000.0, 1001.0]);
        assert!(leave_one_out(&samples, 3.0, 1.0).is_empty());
    }

    #[test]
    fn given_bad_thresholds_when_validated_then_the_parameter_is_named() {
        let error = Thresholds {
            min_lines: 0,
            z_threshold: 3.0,
        }
        .validate()
        .unwrap_err();
        assert!(matches!(
            error,
            ReportError::Invalid {
                field: "min_lines",
                ..
            }
        ));
        let error = Thresholds {
            min_lines: 5,
            z_threshold: f64::NAN,
        }
        .validate()
        .unwrap_err();
        assert!(matches!(
            error,
            ReportError::Invalid {
                field: "z_threshold",
                ..
            }
        ));
    }
}
