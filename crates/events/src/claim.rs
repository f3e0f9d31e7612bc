//! Payloads of a claim's life after derivation: submission, adjudication (the remittance, line by
//! line), resubmission and write-off. The claim aggregate is addressed by
//! [`crate::ClaimId::for_session_and_payer`].
//!
//! Money is integer cents (`i64`): adjustments can be negative (a reversal), totals never overflow.

use rkyv::{Archive, Deserialize, Serialize};

use crate::codes::CptCode;
use crate::ids::{PayerId, SessionId};
use crate::time::EpochDay;

/// One CMS-1500 item-24 line as it went to the payer.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SubmittedLine {
    /// 1-based line number, the key adjudication refers to.
    pub line_number: u16,
    /// The procedure code billed.
    pub code: CptCode,
    /// Up to four two-character modifiers, in order.
    pub modifiers: Vec<String>,
    /// Units billed.
    pub units: u16,
    /// The line charge in cents.
    pub charge_cents: i64,
}

/// The claim was sent to the payer with these lines (a snapshot: later derivations do not change
/// what was submitted).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClaimSubmitted {
    /// The session billed.
    pub session: SessionId,
    /// The payer billed.
    pub payer: PayerId,
    /// The date of service, in the clinic's time zone.
    pub date_of_service: EpochDay,
    /// The day the claim went out, in the clinic's time zone (a business date, like the
    /// remittance's `adjudicated_on`, so readers need no time zone to report on it).
    pub submitted_on: EpochDay,
    /// The lines as submitted.
    pub lines: Vec<SubmittedLine>,
}

/// Who an adjustment is assigned to (X12 835 claim adjustment group codes).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum AdjustmentGroup {
    /// CO: contractual obligation, the provider absorbs it.
    ContractualObligation,
    /// PR: patient responsibility.
    PatientResponsibility,
    /// OA: other adjustment.
    OtherAdjustment,
    /// PI: payer-initiated reduction.
    PayerInitiated,
    /// CR: correction or reversal.
    CorrectionReversal,
}

/// One adjustment on a line: group, claim adjustment reason code (CARC) and amount.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Adjustment {
    /// Who bears it.
    pub group: AdjustmentGroup,
    /// The CARC, such as `97` (bundled), `50` (not medically necessary), `4` (modifier), `45`
    /// (contractual), `1` (deductible).
    pub reason_code: String,
    /// The amount adjusted, in cents.
    pub amount_cents: i64,
}

/// The payer's decision on one submitted line.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AdjudicatedLine {
    /// The submitted line this answers.
    pub line_number: u16,
    /// The allowed amount in cents.
    pub allowed_cents: i64,
    /// What the payer paid, in cents.
    pub paid_cents: i64,
    /// What the patient owes (deductible, co-insurance, co-pay), in cents.
    pub patient_responsibility_cents: i64,
    /// Units the payer paid for.
    pub paid_units: u16,
    /// Every adjustment, in the order the remittance lists them.
    pub adjustments: Vec<Adjustment>,
}

/// The payer adjudicated the claim (one remittance).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClaimAdjudicated {
    /// The payer's claim control number.
    pub payer_claim_number: String,
    /// The day the payer paid or denied (the remittance date).
    pub adjudicated_on: EpochDay,
    /// One entry per submitted line.
    pub lines: Vec<AdjudicatedLine>,
}

/// The claim was sent again, for example with the other code after a denial.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClaimResubmitted {
    /// Why, as entered by billing staff.
    pub reason: String,
    /// The day the claim went out again, in the clinic's time zone.
    pub resubmitted_on: EpochDay,
    /// The lines as resubmitted; they replace the previous submission's lines.
    pub lines: Vec<SubmittedLine>,
}

/// The balance was written off.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClaimWrittenOff {
    /// Why, as entered by billing staff.
    pub reason: String,
    /// The amount written off, in cents.
    pub amount_cents: i64,
}
