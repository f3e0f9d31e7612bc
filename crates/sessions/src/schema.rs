//! Explicit conversions between the session's domain events and the log's archived events
//! (`claimledger-events`), so that neither side's types leak into the other (house style habit 4).
//!
//! Two mappings are not one to one, and both are deliberate:
//! - The log's generic `TherapeuticExercise` (data recorded without the kind of exercise) reads back
//!   as range-of-motion exercise: all four kinds bill as 97110, so the billing outcome is the same.
//!   New data records the kind with its own variant.
//! - The log's `Coverage::Payer` names the coverage by id (schema version 3; version 2 carried the
//!   same id as text in a field called `member_id`). The member id itself is PHI, which never
//!   enters the log: it stays in PostgreSQL.

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_billing::codes::{CptCode, Technique};
use claimledger_billing::validation::{FieldError, Icd10Code};
use claimledger_events::session as log;
use claimledger_events::{ClinicId, EpochDay, Event, EventId, UtcMicros};
use thiserror::Error;

use crate::body::{BodyRegion, BodySide};
use crate::command::{CoverageId, Payment, ReferralId};
use crate::event::{ModalityRecorded, Scheduled, ServiceRecorded, SessionEvent};

/// The text the log's free-text technique carries for the billing core's unlisted technique (the
/// written description travels in the service's `description`).
const UNLISTED_TECHNIQUE_TEXT: &str = "unlisted";

/// A log event that cannot be read back as a session event.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// A code on the log is not in the billing core's catalogue.
    #[error("the log holds a code the billing core does not know")]
    UnknownCode(#[source] FieldError),
    /// A day on the log is outside the representable range.
    #[error("the log holds a day out of range: {days} days from 1970-01-01")]
    DayOutOfRange {
        /// The stored day count.
        days: i32,
    },
    /// An instant on the log is outside the representable range.
    #[error("the log holds an instant out of range: {micros} µs")]
    InstantOutOfRange {
        /// The stored microseconds.
        micros: i64,
    },
}

/// Converts an instant to the log's microseconds.
pub fn to_micros(instant: DateTime<Utc>) -> UtcMicros {
    UtcMicros(instant.timestamp_micros())
}

/// Converts the log's microseconds to an instant.
pub fn from_micros(micros: UtcMicros) -> Result<DateTime<Utc>, SchemaError> {
    DateTime::from_timestamp_micros(micros.0)
        .ok_or(SchemaError::InstantOutOfRange { micros: micros.0 })
}

/// The first day of the log's day count (`EpochDay(0)`).
const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

/// Converts a calendar day to the log's day count.
pub fn to_epoch_day(day: NaiveDate) -> EpochDay {
    // Every NaiveDate is within ±262,143 years of 1970, far inside i32 days.
    EpochDay(i32::try_from((day - EPOCH).num_days()).unwrap_or(i32::MAX))
}

/// Converts the log's day count to a calendar day.
pub fn from_epoch_day(day: EpochDay) -> Result<NaiveDate, SchemaError> {
    EPOCH
        .checked_add_signed(chrono::Duration::days(i64::from(day.0)))
        .ok_or(SchemaError::DayOutOfRange { days: day.0 })
}

/// When a domain event happened, for the log's `occurred_at`: its own instant if it carries one,
/// else `decided_at`, the instant the command was decided.
pub fn occurred_at(event: &SessionEvent, decided_at: DateTime<Utc>) -> DateTime<Utc> {
    match event {
        SessionEvent::CheckedIn { at } | SessionEvent::Completed { at } => *at,
        _ => decided_at,
    }
}

/// Converts a domain event to the log's event.
pub fn to_log_event(event: &SessionEvent) -> Event {
    match event {
        SessionEvent::Scheduled(scheduled) => Event::SessionScheduled(log::SessionScheduled {
            therapist: scheduled.therapist,
            patient: scheduled.patient,
            coverage: match scheduled.payment {
                Payment::Payer { payer, coverage } => log::Coverage::Payer {
                    payer,
                    coverage: claimledger_events::CoverageId::from(coverage.0),
                },
                Payment::SelfPay => log::Coverage::SelfPay,
            },
            referral: scheduled
                .referral
                .map(|referral| claimledger_events::ReferralId::from(referral.0)),
            scheduled_start: to_micros(scheduled.scheduled_start),
            planned_minutes: scheduled.planned_minutes,
        }),
        SessionEvent::CheckedIn { .. } => Event::CheckedIn,
        SessionEvent::ServiceRecorded(service) => Event::ServiceRecorded(log::ServiceRecorded {
            technique: to_log_technique(service.technique),
            cpt_code: to_log_code(service.code),
            minutes: service.minutes,
            body_region: to_log_region(&service.body_region),
            body_side: service.body_side.map(to_log_side),
            description: service.description.clone(),
        }),
        SessionEvent::ModalityRecorded(modality) => {
            Event::ModalityRecorded(log::ModalityRecorded {
                code: to_log_code(modality.code),
                minutes: modality.minutes,
            })
        }
        SessionEvent::DiagnosesAttached { codes } => {
            Event::DiagnosesAttached(log::DiagnosesAttached {
                icd10_codes: codes.iter().map(to_log_diagnosis).collect(),
            })
        }
        SessionEvent::Completed { .. } => Event::SessionCompleted,
        SessionEvent::Cancelled { reason } => Event::SessionCancelled(log::SessionCancelled {
            reason: reason.clone(),
        }),
        SessionEvent::NoShow => Event::SessionNoShow,
        SessionEvent::Amended { reason } => Event::SessionAmended(log::SessionAmended {
            reason: reason.clone(),
        }),
        SessionEvent::ServiceVoided { service, reason } => {
            Event::ServiceVoided(log::ServiceVoided {
                service_event: *service,
                reason: reason.clone(),
            })
        }
    }
}

/// The log event id a domain event must be written under: a recorded service or modality is
/// identified by its event's id (that is how it is voided); other events get a fresh id.
pub fn recorded_id(event: &SessionEvent) -> Option<EventId> {
    match event {
        SessionEvent::ServiceRecorded(service) => Some(service.id),
        SessionEvent::ModalityRecorded(modality) => Some(modality.id),
        _ => None,
    }
}

/// Reads a log event of a session back as a domain event. `clinic` comes from the commit that
/// carried it and `event_id` from the event's record (it identifies recorded services and
/// modalities); `None` means the event is not a session event (for example payer rules).
pub fn from_log_event(
    clinic: ClinicId,
    event_id: EventId,
    occurred_at: DateTime<Utc>,
    event: &Event,
) -> Result<Option<SessionEvent>, SchemaError> {
    let domain = match event {
        Event::SessionScheduled(scheduled) => SessionEvent::Scheduled(Scheduled {
            clinic,
            therapist: scheduled.therapist,
            patient: scheduled.patient,
            payment: match &scheduled.coverage {
                log::Coverage::Payer { payer, coverage } => Payment::Payer {
                    payer: *payer,
                    coverage: CoverageId(coverage.as_uuid()),
                },
                log::Coverage::SelfPay => Payment::SelfPay,
            },
            referral: scheduled
                .referral
                .map(|referral| ReferralId(referral.as_uuid())),
            scheduled_start: from_micros(scheduled.scheduled_start)?,
            planned_minutes: scheduled.planned_minutes,
        }),
        Event::CheckedIn => SessionEvent::CheckedIn { at: occurred_at },
        Event::ServiceRecorded(service) => SessionEvent::ServiceRecorded(ServiceRecorded {
            id: event_id,
            technique: from_log_technique(&service.technique),
            code: from_log_code(&service.cpt_code)?,
            minutes: service.minutes,
            body_region: from_log_region(&service.body_region),
            body_side: service.body_side.map(from_log_side),
            description: service.description.clone(),
        }),
        Event::ModalityRecorded(modality) => SessionEvent::ModalityRecorded(ModalityRecorded {
            id: event_id,
            code: from_log_code(&modality.code)?,
            minutes: modality.minutes,
        }),
        Event::DiagnosesAttached(attached) => SessionEvent::DiagnosesAttached {
            codes: attached
                .icd10_codes
                .iter()
                .map(|code| {
                    Icd10Code::parse("icd10_codes", code.as_str()).map_err(SchemaError::UnknownCode)
                })
                .collect::<Result<Vec<Icd10Code>, SchemaError>>()?,
        },
        Event::SessionCompleted => SessionEvent::Completed { at: occurred_at },
        Event::SessionCancelled(cancelled) => SessionEvent::Cancelled {
            reason: cancelled.reason.clone(),
        },
        Event::SessionNoShow => SessionEvent::NoShow,
        Event::SessionAmended(amended) => SessionEvent::Amended {
            reason: amended.reason.clone(),
        },
        Event::ServiceVoided(voided) => SessionEvent::ServiceVoided {
            service: voided.service_event,
            reason: voided.reason.clone(),
        },
        _ => return Ok(None),
    };
    Ok(Some(domain))
}

fn to_log_code(code: CptCode) -> claimledger_events::CptCode {
    claimledger_events::CptCode::new(code.as_str())
        .expect("every catalogue code is five ASCII digits")
}

fn from_log_code(code: &claimledger_events::CptCode) -> Result<CptCode, SchemaError> {
    CptCode::parse("cpt_code", code.as_str()).map_err(SchemaError::UnknownCode)
}

fn to_log_diagnosis(code: &Icd10Code) -> claimledger_events::Icd10Code {
    claimledger_events::Icd10Code::new(code.as_str())
        .expect("the billing core's ICD-10 syntax is stricter than the log's")
}

fn to_log_technique(technique: Technique) -> log::Technique {
    match technique {
        Technique::Effleurage => log::Technique::Effleurage,
        Technique::Petrissage => log::Technique::Petrissage,
        Technique::Tapotement => log::Technique::Tapotement,
        Technique::SwedishMassage => log::Technique::Swedish,
        Technique::DeepTissueMassage => log::Technique::DeepTissue,
        Technique::MyofascialRelease => log::Technique::MyofascialRelease,
        Technique::SoftTissueMobilisation => log::Technique::SoftTissueMobilisation,
        Technique::JointMobilisation => log::Technique::JointMobilisation,
        Technique::ManualTraction => log::Technique::ManualTraction,
        Technique::ManualLymphaticDrainage => log::Technique::ManualLymphaticDrainage,
        Technique::ProprioceptiveNeuromuscularFacilitation => log::Technique::Pnf,
        Technique::BalanceAndProprioception => log::Technique::BalanceProprioception,
        Technique::StrengthExercise => log::Technique::StrengthExercise,
        Technique::EnduranceExercise => log::Technique::EnduranceExercise,
        Technique::RangeOfMotionExercise => log::Technique::RangeOfMotionExercise,
        Technique::FlexibilityExercise => log::Technique::FlexibilityExercise,
        Technique::FunctionalActivities => log::Technique::FunctionalActivities,
        Technique::Cupping => log::Technique::Cupping,
        Technique::OtherUnlisted => log::Technique::Other(UNLISTED_TECHNIQUE_TEXT.to_owned()),
    }
}

fn from_log_technique(technique: &log::Technique) -> Technique {
    match technique {
        log::Technique::Effleurage => Technique::Effleurage,
        log::Technique::Petrissage => Technique::Petrissage,
        log::Technique::Tapotement => Technique::Tapotement,
        log::Technique::Swedish => Technique::SwedishMassage,
        log::Technique::DeepTissue => Technique::DeepTissueMassage,
        log::Technique::MyofascialRelease => Technique::MyofascialRelease,
        log::Technique::SoftTissueMobilisation => Technique::SoftTissueMobilisation,
        log::Technique::JointMobilisation => Technique::JointMobilisation,
        log::Technique::ManualTraction => Technique::ManualTraction,
        log::Technique::ManualLymphaticDrainage => Technique::ManualLymphaticDrainage,
        log::Technique::Pnf => Technique::ProprioceptiveNeuromuscularFacilitation,
        log::Technique::BalanceProprioception => Technique::BalanceAndProprioception,
        log::Technique::TherapeuticExercise => Technique::RangeOfMotionExercise,
        log::Technique::StrengthExercise => Technique::StrengthExercise,
        log::Technique::EnduranceExercise => Technique::EnduranceExercise,
        log::Technique::RangeOfMotionExercise => Technique::RangeOfMotionExercise,
        log::Technique::FlexibilityExercise => Technique::FlexibilityExercise,
        log::Technique::FunctionalActivities => Technique::FunctionalActivities,
        log::Technique::Cupping => Technique::Cupping,
        log::Technique::Other(_) => Technique::OtherUnlisted,
    }
}

fn to_log_region(region: &BodyRegion) -> log::BodyRegion {
    match region {
        BodyRegion::Head => log::BodyRegion::Head,
        BodyRegion::Neck => log::BodyRegion::Neck,
        BodyRegion::Shoulder => log::BodyRegion::Shoulder,
        BodyRegion::UpperBack => log::BodyRegion::UpperBack,
        BodyRegion::LowerBack => log::BodyRegion::LowerBack,
        BodyRegion::Chest => log::BodyRegion::Chest,
        BodyRegion::Abdomen => log::BodyRegion::Abdomen,
        BodyRegion::Hip => log::BodyRegion::Hip,
        BodyRegion::Arm => log::BodyRegion::Arm,
        BodyRegion::Hand => log::BodyRegion::Hand,
        BodyRegion::Leg => log::BodyRegion::Leg,
        BodyRegion::Foot => log::BodyRegion::Foot,
        BodyRegion::Other(text) => log::BodyRegion::Other(text.clone()),
    }
}

fn from_log_region(region: &log::BodyRegion) -> BodyRegion {
    match region {
        log::BodyRegion::Head => BodyRegion::Head,
        log::BodyRegion::Neck => BodyRegion::Neck,
        log::BodyRegion::Shoulder => BodyRegion::Shoulder,
        log::BodyRegion::UpperBack => BodyRegion::UpperBack,
        log::BodyRegion::LowerBack => BodyRegion::LowerBack,
        log::BodyRegion::Chest => BodyRegion::Chest,
        log::BodyRegion::Abdomen => BodyRegion::Abdomen,
        log::BodyRegion::Hip => BodyRegion::Hip,
        log::BodyRegion::Arm => BodyRegion::Arm,
        log::BodyRegion::Hand => BodyRegion::Hand,
        log::BodyRegion::Leg => BodyRegion::Leg,
        log::BodyRegion::Foot => BodyRegion::Foot,
        log::BodyRegion::Other(text) => BodyRegion::Other(text.clone()),
    }
}

fn to_log_side(side: BodySide) -> log::BodySide {
    match side {
        BodySide::Left => log::BodySide::Left,
        BodySide::Right => log::BodySide::Right,
        BodySide::Bilateral => log::BodySide::Bilateral,
        BodySide::Midline => log::BodySide::Midline,
    }
}

fn from_log_side(side: log::BodySide) -> BodySide {
    match side {
        log::BodySide::Left => BodySide::Left,
        log::BodySide::Right => BodySide::Right,
        log::BodySide::Bilateral => BodySide::Bilateral,
        log::BodySide::Midline => BodySide::Midline,
    }
}
