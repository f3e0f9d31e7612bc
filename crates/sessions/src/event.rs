//! The domain events a session decision produces; [`crate::schema`] converts them to the log's
//! archived events and back.

use chrono::{DateTime, Utc};
use claimledger_billing::codes::{CptCode, Technique};
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{ClinicId, EventId, PatientId, TherapistId};

use crate::body::{BodyRegion, BodySide};
use crate::command::{Payment, ReferralId};

/// A booked session, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The clinic where it takes place.
    pub clinic: ClinicId,
    /// The treating therapist.
    pub therapist: TherapistId,
    /// The patient.
    pub patient: PatientId,
    /// Who pays.
    pub payment: Payment,
    /// The referral the visit is given under, if any.
    pub referral: Option<ReferralId>,
    /// The booked start.
    pub scheduled_start: DateTime<Utc>,
    /// The booked length in minutes.
    pub planned_minutes: u16,
}

/// A delivered service, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecorded {
    /// Its id: the id of the log event that records it.
    pub id: EventId,
    /// How it was delivered.
    pub technique: Technique,
    /// The code it is billed under.
    pub code: CptCode,
    /// Minutes of direct contact.
    pub minutes: u16,
    /// Where.
    pub body_region: BodyRegion,
    /// Which side, if recorded.
    pub body_side: Option<BodySide>,
    /// The written description, if any.
    pub description: Option<String>,
}

/// An applied modality, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModalityRecorded {
    /// Its id: the id of the log event that records it.
    pub id: EventId,
    /// The modality's code.
    pub code: CptCode,
    /// Minutes applied.
    pub minutes: u16,
}

/// Something that happened to a session. Instants are business time (when it happened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The session was booked.
    Scheduled(Scheduled),
    /// The patient arrived.
    CheckedIn {
        /// When.
        at: DateTime<Utc>,
    },
    /// A service was delivered.
    ServiceRecorded(ServiceRecorded),
    /// A modality was applied.
    ModalityRecorded(ModalityRecorded),
    /// Diagnoses were attached, primary first.
    DiagnosesAttached {
        /// The codes.
        codes: Vec<Icd10Code>,
    },
    /// The visit's record was completed.
    Completed {
        /// When.
        at: DateTime<Utc>,
    },
    /// The booking was cancelled.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The patient did not attend.
    NoShow,
    /// A completed record was reopened for correction.
    Amended {
        /// Why.
        reason: String,
    },
    /// A service or modality recorded by mistake was voided.
    ServiceVoided {
        /// The voided service's or modality's id.
        service: EventId,
        /// Why.
        reason: String,
    },
}
