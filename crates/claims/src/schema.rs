//! Explicit conversions between the claim's domain events and the log's archived events
//! (`claimledger-events`), so that neither side's types leak into the other (house style habit 4).

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Modifier};
use claimledger_events::claim as log;
use claimledger_events::{EpochDay, Event};
use thiserror::Error;

use crate::event::{Adjudication, Adjustment, AdjustmentGroup, ClaimEvent, ClaimLine, LineOutcome};

/// A log event that cannot be read back as a claim event.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchemaError {
    /// A code on the log is not in the billing core's catalogue.
    #[error("the log holds the procedure code {0:?}, which the billing core does not know")]
    UnknownCode(String),
    /// A modifier on the log is not one the billing core knows.
    #[error("the log holds the modifier {0:?}, which the billing core does not know")]
    UnknownModifier(String),
    /// A day on the log is outside the representable range.
    #[error("the log holds a day out of range: {0}")]
    DayOutOfRange(i32),
}

/// The first day of the log's day count.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Converts a date to the log's day number.
pub fn to_epoch_day(day: NaiveDate) -> EpochDay {
    EpochDay(i32::try_from((day - epoch()).num_days()).unwrap_or(i32::MAX))
}

/// Converts the log's day number to a date.
pub fn from_epoch_day(day: EpochDay) -> Result<NaiveDate, SchemaError> {
    epoch()
        .checked_add_signed(chrono::Duration::days(i64::from(day.0)))
        .ok_or(SchemaError::DayOutOfRange(day.0))
}

fn to_log_lines(lines: &[ClaimLine]) -> Vec<log::SubmittedLine> {
    lines
        .iter()
        .map(|line| log::SubmittedLine {
            line_number: line.line_number,
            code: claimledger_events::CptCode::new(line.code.as_str())
                .expect("catalogue codes are five digits, which the log's code type accepts"),
            modifiers: line
                .modifiers
                .iter()
                .map(|modifier| modifier.as_str().to_owned())
                .collect(),
            units: line.units,
            charge_cents: line.charge_cents,
        })
        .collect()
}

fn from_log_lines(lines: &[log::SubmittedLine]) -> Result<Vec<ClaimLine>, SchemaError> {
    lines
        .iter()
        .map(|line| {
            let code = CptCode::parse("code", line.code.as_str())
                .map_err(|_| SchemaError::UnknownCode(line.code.as_str().to_owned()))?;
            let modifiers = line
                .modifiers
                .iter()
                .map(|text| {
                    Modifier::ALL
                        .into_iter()
                        .find(|modifier| modifier.as_str() == text)
                        .ok_or_else(|| SchemaError::UnknownModifier(text.clone()))
                })
                .collect::<Result<Vec<Modifier>, SchemaError>>()?;
            Ok(ClaimLine {
                line_number: line.line_number,
                code,
                modifiers,
                units: line.units,
                charge_cents: line.charge_cents,
            })
        })
        .collect()
}

/// The log's group for a domain group.
pub fn to_log_group(group: AdjustmentGroup) -> log::AdjustmentGroup {
    match group {
        AdjustmentGroup::ContractualObligation => log::AdjustmentGroup::ContractualObligation,
        AdjustmentGroup::PatientResponsibility => log::AdjustmentGroup::PatientResponsibility,
        AdjustmentGroup::OtherAdjustment => log::AdjustmentGroup::OtherAdjustment,
        AdjustmentGroup::PayerInitiated => log::AdjustmentGroup::PayerInitiated,
        AdjustmentGroup::CorrectionReversal => log::AdjustmentGroup::CorrectionReversal,
    }
}

/// The domain group for a log group.
pub fn from_log_group(group: log::AdjustmentGroup) -> AdjustmentGroup {
    match group {
        log::AdjustmentGroup::ContractualObligation => AdjustmentGroup::ContractualObligation,
        log::AdjustmentGroup::PatientResponsibility => AdjustmentGroup::PatientResponsibility,
        log::AdjustmentGroup::OtherAdjustment => AdjustmentGroup::OtherAdjustment,
        log::AdjustmentGroup::PayerInitiated => AdjustmentGroup::PayerInitiated,
        log::AdjustmentGroup::CorrectionReversal => AdjustmentGroup::CorrectionReversal,
    }
}

/// Converts a domain event to the log's event.
pub fn to_log_event(event: &ClaimEvent) -> Event {
    match event {
        ClaimEvent::Submitted {
            session,
            payer,
            date_of_service,
            submitted_on,
            lines,
        } => Event::ClaimSubmitted(log::ClaimSubmitted {
            session: *session,
            payer: *payer,
            date_of_service: to_epoch_day(*date_of_service),
            submitted_on: to_epoch_day(*submitted_on),
            lines: to_log_lines(lines),
        }),
        ClaimEvent::Adjudicated(adjudication) => Event::ClaimAdjudicated(log::ClaimAdjudicated {
            payer_claim_number: adjudication.payer_claim_number.clone(),
            adjudicated_on: to_epoch_day(adjudication.adjudicated_on),
            lines: adjudication
                .lines
                .iter()
                .map(|line| log::AdjudicatedLine {
                    line_number: line.line_number,
                    allowed_cents: line.allowed_cents,
                    paid_cents: line.paid_cents,
                    patient_responsibility_cents: line.patient_responsibility_cents,
                    paid_units: line.paid_units,
                    adjustments: line
                        .adjustments
                        .iter()
                        .map(|adjustment| log::Adjustment {
                            group: to_log_group(adjustment.group),
                            reason_code: adjustment.reason_code.clone(),
                            amount_cents: adjustment.amount_cents,
                        })
                        .collect(),
                })
                .collect(),
        }),
        ClaimEvent::Resubmitted {
            reason,
            resubmitted_on,
            lines,
        } => Event::ClaimResubmitted(log::ClaimResubmitted {
            reason: reason.clone(),
            resubmitted_on: to_epoch_day(*resubmitted_on),
            lines: to_log_lines(lines),
        }),
        ClaimEvent::WrittenOff {
            reason,
            amount_cents,
        } => Event::ClaimWrittenOff(log::ClaimWrittenOff {
            reason: reason.clone(),
            amount_cents: *amount_cents,
        }),
    }
}

/// Converts a log event to a claim event; `None` for events that are not about claims.
pub fn from_log_event(event: &Event) -> Result<Option<ClaimEvent>, SchemaError> {
    Ok(Some(match event {
        Event::ClaimSubmitted(submitted) => ClaimEvent::Submitted {
            session: submitted.session,
            payer: submitted.payer,
            date_of_service: from_epoch_day(submitted.date_of_service)?,
            submitted_on: from_epoch_day(submitted.submitted_on)?,
            lines: from_log_lines(&submitted.lines)?,
        },
        Event::ClaimAdjudicated(adjudicated) => ClaimEvent::Adjudicated(Adjudication {
            payer_claim_number: adjudicated.payer_claim_number.clone(),
            adjudicated_on: from_epoch_day(adjudicated.adjudicated_on)?,
            lines: adjudicated
                .lines
                .iter()
                .map(|line| LineOutcome {
                    line_number: line.line_number,
                    allowed_cents: line.allowed_cents,
                    paid_cents: line.paid_cents,
                    patient_responsibility_cents: line.patient_responsibility_cents,
                    paid_units: line.paid_units,
                    adjustments: line
                        .adjustments
                        .iter()
                        .map(|adjustment| Adjustment {
                            group: from_log_group(adjustment.group),
                            reason_code: adjustment.reason_code.clone(),
                            amount_cents: adjustment.amount_cents,
                        })
                        .collect(),
                })
                .collect(),
        }),
        Event::ClaimResubmitted(resubmitted) => ClaimEvent::Resubmitted {
            reason: resubmitted.reason.clone(),
            resubmitted_on: from_epoch_day(resubmitted.resubmitted_on)?,
            lines: from_log_lines(&resubmitted.lines)?,
        },
        Event::ClaimWrittenOff(written_off) => ClaimEvent::WrittenOff {
            reason: written_off.reason.clone(),
            amount_cents: written_off.amount_cents,
        },
        _ => return Ok(None),
    }))
}
