//! The validated domain events of a claim's life; [`crate::schema`] converts them to the log's
//! archived events and back.

use std::fmt;

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Modifier};
use claimledger_events::{PayerId, SessionId};

/// One CMS-1500 item-24 line as it went to the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    /// 1-based line number, the key a remittance refers to.
    pub line_number: u16,
    /// The procedure code billed.
    pub code: CptCode,
    /// Up to four modifiers, in order.
    pub modifiers: Vec<Modifier>,
    /// Units billed.
    pub units: u16,
    /// The line charge in cents.
    pub charge_cents: i64,
}

/// Who an adjustment is assigned to: the X12 835 claim adjustment group codes (CAS01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdjustmentGroup {
    /// CO: contractual obligation, the provider absorbs it.
    ContractualObligation,
    /// PR: patient responsibility (deductible, co-insurance, co-pay).
    PatientResponsibility,
    /// OA: other adjustment.
    OtherAdjustment,
    /// PI: payer-initiated reduction.
    PayerInitiated,
    /// CR: correction or reversal.
    CorrectionReversal,
}

impl AdjustmentGroup {
    /// Every group, in the order the codes are listed in messages.
    pub const ALL: [AdjustmentGroup; 5] = [
        AdjustmentGroup::ContractualObligation,
        AdjustmentGroup::PatientResponsibility,
        AdjustmentGroup::OtherAdjustment,
        AdjustmentGroup::PayerInitiated,
        AdjustmentGroup::CorrectionReversal,
    ];

    /// The two-letter code of the remittance.
    pub const fn as_str(self) -> &'static str {
        match self {
            AdjustmentGroup::ContractualObligation => "CO",
            AdjustmentGroup::PatientResponsibility => "PR",
            AdjustmentGroup::OtherAdjustment => "OA",
            AdjustmentGroup::PayerInitiated => "PI",
            AdjustmentGroup::CorrectionReversal => "CR",
        }
    }

    /// The group spelled `code` (exactly, upper case), if any.
    pub fn from_code(code: &str) -> Option<AdjustmentGroup> {
        AdjustmentGroup::ALL
            .into_iter()
            .find(|group| group.as_str() == code)
    }
}

impl fmt::Display for AdjustmentGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated adjustment: group, claim adjustment reason code (CARC, 1–3 upper-case letters
/// or digits) and amount in cents (negative for a reversal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// Who bears it.
    pub group: AdjustmentGroup,
    /// The CARC, e.g. `45`, `97`, `1`, `B15`.
    pub reason_code: String,
    /// The amount, in cents.
    pub amount_cents: i64,
}

/// The payer's validated decision on one submitted line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOutcome {
    /// The submitted line it answers.
    pub line_number: u16,
    /// The allowed amount in cents.
    pub allowed_cents: i64,
    /// What the payer paid, in cents.
    pub paid_cents: i64,
    /// What the patient owes, in cents.
    pub patient_responsibility_cents: i64,
    /// Units the payer paid for.
    pub paid_units: u16,
    /// Every adjustment, in remittance order.
    pub adjustments: Vec<Adjustment>,
}

impl LineOutcome {
    /// A line is denied when the payer paid nothing for it (the reporting contract's definition).
    pub fn is_denied(&self) -> bool {
        self.paid_cents == 0
    }
}

/// One validated remittance for the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjudication {
    /// The payer's claim control number.
    pub payer_claim_number: String,
    /// The remittance date.
    pub adjudicated_on: NaiveDate,
    /// One outcome per submitted line, in submitted line order.
    pub lines: Vec<LineOutcome>,
}

impl Adjudication {
    /// The claim is denied when the payer paid nothing and assigned nothing to the patient; a
    /// claim applied wholly to the deductible was processed (the patient owes it), not denied.
    pub fn is_denial(&self) -> bool {
        self.lines
            .iter()
            .all(|line| line.paid_cents == 0 && line.patient_responsibility_cents == 0)
    }

    /// Total paid by the payer.
    pub fn paid_cents(&self) -> i64 {
        self.lines.iter().map(|line| line.paid_cents).sum()
    }

    /// Total allowed.
    pub fn allowed_cents(&self) -> i64 {
        self.lines.iter().map(|line| line.allowed_cents).sum()
    }

    /// Total assigned to the patient.
    pub fn patient_responsibility_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|line| line.patient_responsibility_cents)
            .sum()
    }
}

/// Something that happened to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimEvent {
    /// The claim went to the payer with these lines.
    Submitted {
        /// The session billed.
        session: SessionId,
        /// The payer billed.
        payer: PayerId,
        /// The date of service.
        date_of_service: NaiveDate,
        /// The day it went out (clinic time zone).
        submitted_on: NaiveDate,
        /// The lines as submitted.
        lines: Vec<ClaimLine>,
    },
    /// The payer adjudicated the claim.
    Adjudicated(Adjudication),
    /// The claim went out again with new lines.
    Resubmitted {
        /// Why.
        reason: String,
        /// The day it went out again.
        resubmitted_on: NaiveDate,
        /// The new lines, replacing the previous submission's.
        lines: Vec<ClaimLine>,
    },
    /// The balance was written off.
    WrittenOff {
        /// Why.
        reason: String,
        /// The amount, in cents.
        amount_cents: i64,
    },
}
