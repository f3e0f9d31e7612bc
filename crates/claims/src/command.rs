//! The commands billing staff issue on a claim, with their inputs as a request or a remittance
//! carries them (text codes, signed amounts): the decision validates them and names the field.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_events::{PayerId, SessionId};

/// The longest free text (reasons, payer claim numbers) kept on the log.
pub const MAX_TEXT_LENGTH: usize = 500;

/// The most lines a claim carries (an 837P allows 50 service lines).
pub const MAX_LINES: usize = 50;

/// The most adjustments one remittance line carries (X12 allows 99 CAS segments of 6 each; a
/// line with more is a broken file, not a real remittance).
pub const MAX_ADJUSTMENTS_PER_LINE: usize = 99;

/// A claim line as a caller states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    /// The procedure code, e.g. `97140`.
    pub code: String,
    /// Modifiers, e.g. `["GP", "59"]`.
    pub modifiers: Vec<String>,
    /// Units billed.
    pub units: u16,
    /// The line charge in cents.
    pub charge_cents: i64,
}

/// One adjustment as the remittance states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentInput {
    /// The group code: CO, PR, OA, PI or CR.
    pub group: String,
    /// The CARC: 1–3 letters or digits.
    pub reason_code: String,
    /// The amount in cents (negative for a reversal).
    pub amount_cents: i64,
}

/// The payer's decision on one line as the remittance states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAdjudicationInput {
    /// The submitted line it answers.
    pub line_number: u16,
    /// Allowed, in cents.
    pub allowed_cents: i64,
    /// Paid, in cents.
    pub paid_cents: i64,
    /// Patient responsibility, in cents.
    pub patient_responsibility_cents: i64,
    /// Units paid.
    pub paid_units: u16,
    /// Adjustments, in order.
    pub adjustments: Vec<AdjustmentInput>,
}

/// A remittance for the claim as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemittanceInput {
    /// The payer's claim control number.
    pub payer_claim_number: String,
    /// The remittance date.
    pub adjudicated_on: NaiveDate,
    /// One entry per submitted line.
    pub lines: Vec<LineAdjudicationInput>,
}

/// What billing staff may do with a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCommand {
    /// Send the derived claim: the caller passes the derived claim's lines as they are now (the
    /// snapshot that goes out) with its session, payer and date of service.
    Submit {
        /// The session billed.
        session: SessionId,
        /// The payer billed.
        payer: PayerId,
        /// The derived claim's date of service.
        date_of_service: NaiveDate,
        /// The derived lines, in line order.
        lines: Vec<LineInput>,
    },
    /// Record the payer's remittance.
    Adjudicate(RemittanceInput),
    /// Send a denied claim again with new lines (for example the other code).
    Resubmit {
        /// Why.
        reason: String,
        /// The new lines, numbered 1.. in order.
        lines: Vec<LineInput>,
    },
    /// Write off an unpaid balance.
    WriteOff {
        /// Why.
        reason: String,
        /// The amount, in cents.
        amount_cents: i64,
    },
}

impl ClaimCommand {
    /// The command's name in refusals.
    pub fn name(&self) -> &'static str {
        match self {
            ClaimCommand::Submit { .. } => "submit",
            ClaimCommand::Adjudicate(_) => "adjudicate",
            ClaimCommand::Resubmit { .. } => "resubmit",
            ClaimCommand::WriteOff { .. } => "write off",
        }
    }
}

/// What a decision needs besides the claim: the current instant and the clinic's time zone, which
/// together give the business date of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionContext {
    /// The current instant.
    pub now: DateTime<Utc>,
    /// The clinic's time zone.
    pub clinic_time_zone: Tz,
}

impl DecisionContext {
    /// The context at `now` for a clinic in `clinic_time_zone`.
    pub fn at(now: DateTime<Utc>, clinic_time_zone: Tz) -> DecisionContext {
        DecisionContext {
            now,
            clinic_time_zone,
        }
    }

    /// Today in the clinic.
    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.clinic_time_zone).date_naive()
    }
}
