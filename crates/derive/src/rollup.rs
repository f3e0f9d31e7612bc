//! The monthly reimbursement rollups: what each claim contributes to `reimbursement_monthly` and
//! `denial_reasons_monthly`, as deltas a batch adds.
//!
//! A claim contributes its latest submission's lines and their latest adjudication, counted in the
//! month of its date of service. A batch that changes a claim adds `after − before` for it, so a
//! resubmission or a second remittance replaces the claim's contribution instead of adding to it.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

/// A `reimbursement_monthly` row's key: what was billed, to whom, from where, in which month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReimbursementKey {
    pub chain: Uuid,
    /// The first day of the month of service.
    pub month: NaiveDate,
    pub clinic: Uuid,
    pub payer: Uuid,
    /// The CPT code billed.
    pub code: String,
}

/// A `denial_reasons_monthly` row's key: a reimbursement key and the adjustment's group and reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DenialKey {
    pub line: ReimbursementKey,
    /// The CAS group code (CO, PR, OA, PI).
    pub group: String,
    /// The CARC reason code.
    pub reason: String,
}

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
