//! The monthly reimbursement rollups: what each claim contributes to `reimbursement_monthly` and
//! `denial_reasons_monthly`, as deltas a batch adds.
//!
//! A claim contributes its latest submission's lines and their latest adjudication, counted in the
//! month of its date of service. A batch that changes a claim adds `after − before` for it, so a
//! resubmission or a second remittance replaces the claim's contribution instead of adding to it.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use crate::lifecycle::Lifecycle;

/// (chain, month, clinic, payer, code).
pub type ReimbursementKey = (Uuid, NaiveDate, Uuid, Uuid, String);

/// (chain, month, clinic, payer, code, group code, reason code).
pub type DenialKey = (Uuid, NaiveDate, Uuid, Uuid, String, String, String);

/// The counters of one `reimbursement_monthly` row, in column order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reimbursement {
    pub billed_lines: i64,
    pub billed_units: i64,
    pub billed_cents: i64,
    pub adjudicated_lines: i64,
    pub denied_lines: i64,
    pub allowed_cents: i64,
    pub paid_cents: i64,
    pub paid_units: i64,
    pub patient_responsibility_cents: i64,
    pub paid_lines: i64,
    pub days_to_payment_sum: i64,
}

impl Reimbursement {
    /// Adds `sign` × `other`.
    pub fn add(&mut self, other: &Reimbursement, sign: i64) {
        self.billed_lines += sign * other.billed_lines;
        self.billed_units += sign * other.billed_units;
        self.billed_cents += sign * other.billed_cents;
        self.adjudicated_lines += sign * other.adjudicated_lines;
        self.denied_lines += sign * other.denied_lines;
        self.allowed_cents += sign * other.allowed_cents;
        self.paid_cents += sign * other.paid_cents;
        self.paid_units += sign * other.paid_units;
        self.patient_responsibility_cents += sign * other.patient_responsibility_cents;
        self.paid_lines += sign * other.paid_lines;
        self.days_to_payment_sum += sign * other.days_to_payment_sum;
    }
}

/// The counters of one `denial_reasons_monthly` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Denials {
    pub lines: i64,
    pub amount_cents: i64,
}

/// A batch's net changes to both rollups.
#[derive(Debug, Default)]
pub struct RollupDeltas {
    pub reimbursement: BTreeMap<ReimbursementKey, Reimbursement>,
    pub denials: BTreeMap<DenialKey, Denials>,
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

impl RollupDeltas {
    /// Adds `sign` × the contribution of `claim` (nothing for a claim never submitted).
    pub fn add_claim(&mut self, claim: &Lifecycle, sign: i64) {
        let Some(date_of_service) = claim.date_of_service else {
            return;
        };
        if claim.submitted_on.is_none() {
            return;
        }
        let month = month_of(date_of_service);
        for line in &claim.lines {
            let mut counters = Reimbursement {
                billed_lines: 1,
                billed_units: i64::from(line.units),
                billed_cents: line.charge_cents,
                ..Reimbursement::default()
            };
            if let Some(result) = &line.result {
                let denied = result.paid_cents == 0;
                counters.adjudicated_lines = 1;
                counters.denied_lines = i64::from(denied);
                counters.allowed_cents = result.allowed_cents;
                counters.paid_cents = result.paid_cents;
                counters.paid_units = i64::from(result.paid_units);
                counters.patient_responsibility_cents = result.patient_responsibility_cents;
                if !denied {
                    counters.paid_lines = 1;
                    counters.days_to_payment_sum = claim
                        .adjudicated_on
                        .map_or(0, |paid_on| (paid_on - date_of_service).num_days());
                }
                if denied {
                    let mut reasons: BTreeMap<(&str, &str), i64> = BTreeMap::new();
                    for adjustment in &result.adjustments {
                        *reasons
                            .entry((adjustment.group.as_str(), adjustment.reason.as_str()))
                            .or_default() += adjustment.amount_cents;
                    }
                    for ((group, reason), amount) in reasons {
                        let entry = self
                            .denials
                            .entry((
                                claim.chain,
                                month,
                                claim.clinic,
                                claim.payer,
                                line.code.clone(),
                                group.to_owned(),
                                reason.to_owned(),
                            ))
                            .or_default();
                        entry.lines += sign;
                        entry.amount_cents += sign * amount;
                    }
                }
            }
            self.reimbursement
                .entry((
                    claim.chain,
                    month,
                    claim.clinic,
                    claim.payer,
                    line.code.clone(),
                ))
                .or_default()
                .add(&counters, sign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{LineResult, OutcomeLine, RemittedAdjustment};
    use claimledger_claims::claim::ClaimStatus;

    fn claim(result: Option<LineResult>) -> Lifecycle {
        Lifecycle {
            chain: Uuid::from_u128(1),
            session: Uuid::from_u128(2),
            payer: Uuid::from_u128(3),
            clinic: Uuid::from_u128(4),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 10),
            status: ClaimStatus::Paid,
            submitted_on: NaiveDate::from_ymd_opt(2026, 3, 11),
            adjudicated_on: NaiveDate::from_ymd_opt(2026, 3, 31),
            payer_claim_number: None,
            written_off_cents: 0,
            resubmissions: 0,
            lines: vec![OutcomeLine {
                line_number: 1,
                code: "97140".to_owned(),
                modifiers: Vec::new(),
                units: 2,
                charge_cents: 9000,
                result,
            }],
        }
    }

    #[test]
    fn given_a_claim_added_then_removed_when_summed_then_every_counter_is_zero() {
        let paid = claim(Some(LineResult {
            allowed_cents: 8000,
            paid_cents: 8000,
            patient_responsibility_cents: 0,
            paid_units: 2,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "45".to_owned(),
                amount_cents: 1000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&paid, 1);
        let key = (
            paid.chain,
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            paid.clinic,
            paid.payer,
            "97140".to_owned(),
        );
        let counters = deltas.reimbursement[&key];
        assert_eq!(counters.paid_lines, 1);
        assert_eq!(counters.days_to_payment_sum, 21);
        assert!(deltas.denials.is_empty(), "a paid line is not a denial");
        deltas.add_claim(&paid, -1);
        assert_eq!(deltas.reimbursement[&key], Reimbursement::default());
    }

    #[test]
    fn given_a_denied_line_when_added_then_its_adjustments_are_denial_reasons() {
        let denied = claim(Some(LineResult {
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "50".to_owned(),
                amount_cents: 9000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&denied, 1);
        let (key, counters) = deltas.denials.iter().next().expect("one reason");
        assert_eq!((key.5.as_str(), key.6.as_str()), ("CO", "50"));
        assert_eq!(
            *counters,
            Denials {
                lines: 1,
                amount_cents: 9000
            }
        );
        let reimbursement = deltas.reimbursement.values().next().expect("one row");
        assert_eq!(reimbursement.denied_lines, 1);
        assert_eq!(reimbursement.paid_lines, 0);
        assert_eq!(reimbursement.days_to_payment_sum, 0);
    }
}
