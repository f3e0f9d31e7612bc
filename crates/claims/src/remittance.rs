//! Validation of what goes to and comes back from a payer, the way an X12 835 reader checks a
//! remittance: every adjudicated line names a submitted line, amounts are not negative (only
//! adjustments may be, for reversals), allowed ≤ charge, paid + patient responsibility ≤ allowed,
//! the patient's share is the sum of the PR adjustments, and each line balances:
//! `charge − Σ adjustments (every group) = paid` (SVC02 − Σ CAS = SVC03).
//!
//! Sums are taken in `i128`, so no remittance, however wrong, can overflow a check into passing.

use std::collections::HashSet;

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Modifier};

use crate::command::{
    AdjustmentInput, LineAdjudicationInput, LineInput, MAX_ADJUSTMENTS_PER_LINE, MAX_LINES,
    MAX_TEXT_LENGTH, RemittanceInput,
};
use crate::error::ClaimError;
use crate::event::{Adjudication, Adjustment, AdjustmentGroup, ClaimLine, LineOutcome};

/// The most modifiers one line carries (CMS-1500 item 24D).
const MAX_MODIFIERS: usize = 4;

/// Validates claim lines as a caller states them and numbers them 1.. in order.
pub fn validate_lines(lines: &[LineInput]) -> Result<Vec<ClaimLine>, ClaimError> {
    if lines.is_empty() {
        return Err(ClaimError::invalid(
            "lines",
            "a claim needs at least one line",
        ));
    }
    if lines.len() > MAX_LINES {
        return Err(ClaimError::invalid(
            "lines",
            format!(
                "a claim carries at most {MAX_LINES} lines, got {}",
                lines.len()
            ),
        ));
    }
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| validate_line(index, line))
        .collect()
}

fn validate_line(index: usize, line: &LineInput) -> Result<ClaimLine, ClaimError> {
    let field = |name: &str| format!("lines[{index}].{name}");
    let code = CptCode::parse(&field("code"), &line.code).map_err(|error| {
        ClaimError::invalid(
            error.field.clone(),
            format!("{:?} {}", error.value, error.problem),
        )
    })?;
    if line.modifiers.len() > MAX_MODIFIERS {
        return Err(ClaimError::invalid(
            field("modifiers"),
            format!(
                "a line carries at most {MAX_MODIFIERS} modifiers, got {}",
                line.modifiers.len()
            ),
        ));
    }
    let mut modifiers = Vec::with_capacity(line.modifiers.len());
    for (position, text) in line.modifiers.iter().enumerate() {
        let modifier = Modifier::ALL
            .into_iter()
            .find(|modifier| modifier.as_str() == text)
            .ok_or_else(|| {
                ClaimError::invalid(
                    format!("lines[{index}].modifiers[{position}]"),
                    format!("{text:?} is not one of 59, XE, XS, XP, XU, GP, GO, GN, KX, CQ"),
                )
            })?;
        if modifiers.contains(&modifier) {
            return Err(ClaimError::invalid(
                format!("lines[{index}].modifiers[{position}]"),
                format!("{text} is already on the line"),
            ));
        }
        modifiers.push(modifier);
    }
    if line.units == 0 {
        return Err(ClaimError::invalid(
            field("units"),
            "a billed line has at least one unit",
        ));
    }
    if line.charge_cents < 0 {
        return Err(ClaimError::invalid(
            field("charge_cents"),
            format!("must not be negative, got {}", line.charge_cents),
        ));
    }
    Ok(ClaimLine {
        line_number: u16::try_from(index + 1).unwrap_or(u16::MAX),
        code,
        modifiers,
        units: line.units,
        charge_cents: line.charge_cents,
    })
}

/// Trims `text` and checks it is present and not too long.
pub fn required_text(field: &str, text: &str) -> Result<String, ClaimError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ClaimError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_TEXT_LENGTH {
        return Err(ClaimError::invalid(
            field,
            format!("must be at most {MAX_TEXT_LENGTH} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The dates a remittance must fall between: not before the submission it answers, not after
/// today in the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemittanceWindow {
    /// The day the answered submission went out.
    pub submitted_on: NaiveDate,
    /// Today in the clinic.
    pub today: NaiveDate,
}

/// Validates a remittance against the submitted lines it answers.
pub fn validate_remittance(
    remittance: &RemittanceInput,
    submitted: &[ClaimLine],
    window: RemittanceWindow,
) -> Result<Adjudication, ClaimError> {
    let payer_claim_number = required_text("payer_claim_number", &remittance.payer_claim_number)?;
    if remittance.adjudicated_on < window.submitted_on {
        return Err(ClaimError::invalid(
            "adjudicated_on",
            format!(
                "{} is before the claim was submitted on {}",
                remittance.adjudicated_on, window.submitted_on
            ),
        ));
    }
    if remittance.adjudicated_on > window.today {
        return Err(ClaimError::invalid(
            "adjudicated_on",
            format!(
                "{} is in the future (today is {})",
                remittance.adjudicated_on, window.today
            ),
        ));
    }
    let mut answered: HashSet<u16> = HashSet::new();
    let mut outcomes = Vec::with_capacity(remittance.lines.len());
    for (index, line) in remittance.lines.iter().enumerate() {
        let Some(submitted_line) = submitted
            .iter()
            .find(|candidate| candidate.line_number == line.line_number)
        else {
            return Err(ClaimError::invalid(
                format!("lines[{index}].line_number"),
                format!(
                    "the claim has no submitted line {} (it has lines 1 to {})",
                    line.line_number,
                    submitted.len()
                ),
            ));
        };
        if !answered.insert(line.line_number) {
            return Err(ClaimError::invalid(
                format!("lines[{index}].line_number"),
                format!("line {} is adjudicated twice", line.line_number),
            ));
        }
        outcomes.push(validate_line_outcome(index, line, submitted_line)?);
    }
    if let Some(missing) = submitted
        .iter()
        .find(|line| !answered.contains(&line.line_number))
    {
        return Err(ClaimError::invalid(
            "lines",
            format!(
                "submitted line {} has no adjudication; a remittance answers every line",
                missing.line_number
            ),
        ));
    }
    outcomes.sort_by_key(|outcome| outcome.line_number);
    Ok(Adjudication {
        payer_claim_number,
        adjudicated_on: remittance.adjudicated_on,
        lines: outcomes,
    })
}

/// Validates one adjudicated line against the submitted line it answers.
pub fn validate_line_outcome(
    index: usize,
    line: &LineAdjudicationInput,
    submitted: &ClaimLine,
) -> Result<LineOutcome, ClaimError> {
    let field = |name: &str| format!("lines[{index}].{name}");
    for (name, amount) in [
        ("allowed_cents", line.allowed_cents),
        ("paid_cents", line.paid_cents),
        (
            "patient_responsibility_cents",
            line.patient_responsibility_cents,
        ),
    ] {
        if amount < 0 {
            return Err(ClaimError::invalid(
                field(name),
                format!("must not be negative, got {amount}"),
            ));
        }
    }
    if line.paid_units > submitted.units {
        return Err(ClaimError::invalid(
            field("paid_units"),
            format!(
                "{} units paid, but line {} billed {}",
                line.paid_units, submitted.line_number, submitted.units
            ),
        ));
    }
    if line.allowed_cents > submitted.charge_cents {
        return Err(ClaimError::invalid(
            field("allowed_cents"),
            format!(
                "{} exceeds the line's charge of {}",
                line.allowed_cents, submitted.charge_cents
            ),
        ));
    }
    let paid_and_patient =
        i128::from(line.paid_cents) + i128::from(line.patient_responsibility_cents);
    if paid_and_patient > i128::from(line.allowed_cents) {
        return Err(ClaimError::invalid(
            field("paid_cents"),
            format!(
                "paid {} plus patient responsibility {} exceeds the allowed {}",
                line.paid_cents, line.patient_responsibility_cents, line.allowed_cents
            ),
        ));
    }
    if line.adjustments.len() > MAX_ADJUSTMENTS_PER_LINE {
        return Err(ClaimError::invalid(
            field("adjustments"),
            format!(
                "a line carries at most {MAX_ADJUSTMENTS_PER_LINE} adjustments, got {}",
                line.adjustments.len()
            ),
        ));
    }
    let adjustments = line
        .adjustments
        .iter()
        .enumerate()
        .map(|(position, adjustment)| validate_adjustment(index, position, adjustment))
        .collect::<Result<Vec<Adjustment>, ClaimError>>()?;
    let adjusted: i128 = adjustments
        .iter()
        .map(|adjustment| i128::from(adjustment.amount_cents))
        .sum();
    let balance = i128::from(submitted.charge_cents) - adjusted;
    if balance != i128::from(line.paid_cents) {
        return Err(ClaimError::invalid(
            field("paid_cents"),
            format!(
                "the line does not balance: charge {} minus adjustments {adjusted} is {balance}, but paid is {}",
                submitted.charge_cents, line.paid_cents
            ),
        ));
    }
    let patient_share: i128 = adjustments
        .iter()
        .filter(|adjustment| adjustment.group == AdjustmentGroup::PatientResponsibility)
        .map(|adjustment| i128::from(adjustment.amount_cents))
        .sum();
    if patient_share != i128::from(line.patient_responsibility_cents) {
        return Err(ClaimError::invalid(
            field("patient_responsibility_cents"),
            format!(
                "is {}, but the PR adjustments add up to {patient_share}",
                line.patient_responsibility_cents
            ),
        ));
    }
    Ok(LineOutcome {
        line_number: line.line_number,
        allowed_cents: line.allowed_cents,
        paid_cents: line.paid_cents,
        patient_responsibility_cents: line.patient_responsibility_cents,
        paid_units: line.paid_units,
        adjustments,
    })
}

fn validate_adjustment(
    index: usize,
    position: usize,
    adjustment: &AdjustmentInput,
) -> Result<Adjustment, ClaimError> {
    let field = |name: &str| format!("lines[{index}].adjustments[{position}].{name}");
    let group = AdjustmentGroup::from_code(&adjustment.group).ok_or_else(|| {
        ClaimError::invalid(
            field("group"),
            format!(
                "{:?} is not a claim adjustment group code (CO, PR, OA, PI, CR)",
                adjustment.group
            ),
        )
    })?;
    let reason = &adjustment.reason_code;
    if !(1..=3).contains(&reason.len()) || !reason.bytes().all(|byte| byte.is_ascii_alphanumeric())
    {
        return Err(ClaimError::invalid(
            field("reason_code"),
            format!("{reason:?} is not a CARC (1 to 3 letters or digits, e.g. 45, 97, B15)"),
        ));
    }
    if adjustment.amount_cents == 0 {
        return Err(ClaimError::invalid(
            field("amount_cents"),
            "an adjustment of 0 adjusts nothing; leave it out",
        ));
    }
    Ok(Adjustment {
        group,
        reason_code: reason.to_ascii_uppercase(),
        amount_cents: adjustment.amount_cents,
    })
}
