//! The commands a clinic issues about a session, and the context a decision is taken in.
//!
//! Commands carry already-parsed domain values (codes, techniques, diagnoses); turning request text
//! into them is the caller's job and reports the field that was wrong. The context carries what the
//! caller looked up outside the session (coverage and referral terms) and the current instant, so
//! that deciding stays a pure function.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_billing::codes::{CptCode, Technique};
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{ClinicId, EventId, PatientId, PayerId, TherapistId};
use uuid::Uuid;

use crate::body::{BodyRegion, BodySide};

/// The longest booked visit the domain accepts, in minutes (a double session plus changeover).
pub const MAX_PLANNED_MINUTES: u16 = 240;

/// How far ahead of the current instant a session may be booked, in days: a year's calendar.
pub const MAX_BOOKING_DAYS_AHEAD: i64 = 366;

/// How far behind the current instant a session may be recorded, in days: three years covers
/// every payer's timely-filing limit and the history a chain carries over when it moves in.
pub const MAX_BOOKING_DAYS_BEHIND: i64 = 3 * 366;

/// The most diagnoses one session may carry: the CMS-1500 item 21 and the 837P HI segment hold 12.
pub const MAX_DIAGNOSES: usize = 12;

/// The longest free-text reason or description the domain accepts, in characters.
pub const MAX_TEXT_LENGTH: usize = 500;

/// A patient's coverage by one payer (member id and dates live with the API's PHI store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoverageId(pub Uuid);

/// A referral or prescription that authorises a course of treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReferralId(pub Uuid);

/// Who pays for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// A payer covers the session under the named coverage.
    Payer {
        /// The payer.
        payer: PayerId,
        /// The patient's coverage at that payer.
        coverage: CoverageId,
    },
    /// The patient pays the clinic directly.
    SelfPay,
}

/// Book a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSession {
    /// The clinic where it takes place.
    pub clinic: ClinicId,
    /// The treating therapist.
    pub therapist: TherapistId,
    /// The patient.
    pub patient: PatientId,
    /// Who pays.
    pub payment: Payment,
    /// The referral the session is given under, if the payer or the clinic needs one.
    pub referral: Option<ReferralId>,
    /// The booked start.
    pub scheduled_start: DateTime<Utc>,
    /// The booked length, which caps the minutes that may be recorded.
    pub planned_minutes: u16,
}

/// Record a billable service delivered during the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordService {
    /// The id the recorded service will have: the log event's id, by which it can be voided. The
    /// caller chooses it, like any new entity's id.
    pub id: EventId,
    /// How it was delivered.
    pub technique: Technique,
    /// The code it is billed under; it must cover the technique.
    pub code: CptCode,
    /// Minutes of direct contact.
    pub minutes: u16,
    /// Where it was delivered.
    pub body_region: BodyRegion,
    /// Which side, if recorded.
    pub body_side: Option<BodySide>,
    /// A free-text description; required for the unlisted code 97139.
    pub description: Option<String>,
}

/// Record a supervised modality such as hot or cold packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordModality {
    /// The id the recorded modality will have (the log event's id).
    pub id: EventId,
    /// The modality's code (an untimed supervised modality: 97010 or 97012).
    pub code: CptCode,
    /// Minutes applied.
    pub minutes: u16,
}

/// What a clinic can ask of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Book the session.
    Schedule(ScheduleSession),
    /// The patient arrived.
    CheckIn,
    /// A service was delivered.
    RecordService(RecordService),
    /// A modality was applied.
    RecordModality(RecordModality),
    /// Diagnoses supporting the treatment, primary first.
    AttachDiagnoses(Vec<Icd10Code>),
    /// The visit is over and its record complete.
    Complete,
    /// The booking is cancelled before the visit took place.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The patient did not attend.
    NoShow,
    /// Reopen a completed record to correct it.
    Amend {
        /// Why.
        reason: String,
    },
    /// Void a service or modality recorded by mistake: it stops counting for minutes and units,
    /// and the original stays on the log.
    VoidService {
        /// The event id of the recorded service or modality.
        service: EventId,
        /// Why.
        reason: String,
    },
}

impl SessionCommand {
    /// The command's name as the API and the logs spell it.
    pub fn name(&self) -> &'static str {
        match self {
            SessionCommand::Schedule(_) => "schedule",
            SessionCommand::CheckIn => "check_in",
            SessionCommand::RecordService(_) => "record_service",
            SessionCommand::RecordModality(_) => "record_modality",
            SessionCommand::AttachDiagnoses(_) => "attach_diagnoses",
            SessionCommand::Complete => "complete",
            SessionCommand::Cancel { .. } => "cancel",
            SessionCommand::NoShow => "no_show",
            SessionCommand::Amend { .. } => "amend",
            SessionCommand::VoidService { .. } => "void_service",
        }
    }
}

/// The terms of the coverage a schedule command names, as the caller found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverageTerms {
    /// The covered patient.
    pub patient: PatientId,
    /// The payer.
    pub payer: PayerId,
    /// The first day covered.
    pub valid_from: NaiveDate,
    /// The last day covered, if the coverage ends.
    pub valid_to: Option<NaiveDate>,
}

/// The terms of the referral a schedule command names, as the caller found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralTerms {
    /// The referred patient.
    pub patient: PatientId,
    /// The day it was issued.
    pub issued_on: NaiveDate,
    /// The last day it authorises treatment.
    pub expires_on: NaiveDate,
    /// How many visits it authorises.
    pub authorised_visits: u32,
    /// How many sessions are already booked under it (cancelled and no-show ones excluded).
    pub visits_booked: u32,
}

/// Everything a decision needs besides the session's own state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionContext {
    /// The current instant, as the caller's clock reads it.
    pub now: DateTime<Utc>,
    /// The clinic's time zone, which turns instants into the date of service.
    pub clinic_time_zone: Tz,
    /// For a schedule command paid by a payer: the coverage it names.
    pub coverage: Option<CoverageTerms>,
    /// For a schedule command under a referral: the referral it names.
    pub referral: Option<ReferralTerms>,
}

impl DecisionContext {
    /// A context for commands on an existing session, which need no lookups.
    pub fn at(now: DateTime<Utc>, clinic_time_zone: Tz) -> DecisionContext {
        DecisionContext {
            now,
            clinic_time_zone,
            coverage: None,
            referral: None,
        }
    }
}
