//! Payloads of the session lifecycle events: scheduling, check-in, recorded services and modalities,
//! diagnoses, and the ways a session ends.
//!
//! These structs are part of the archived log format. Once released in a schema version they are
//! frozen: see the versioning rule on [`crate::Event`].

use rkyv::{Archive, Deserialize, Serialize};

use crate::codes::{CptCode, Icd10Code};
use crate::ids::{CoverageId, EventId, PatientId, PayerId, ReferralId, TherapistId};
use crate::time::UtcMicros;

/// Who pays for a session (schema version 3 shape; see [`crate::v2::CoverageV2`]).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Coverage {
    /// A third-party payer covers the session under one of the patient's recorded coverages.
    Payer {
        /// The payer whose rules price the claim.
        payer: PayerId,
        /// The coverage (`CoverageRecorded`); its member id is PHI and stays in PostgreSQL.
        coverage: CoverageId,
    },
    /// The patient pays the clinic directly.
    SelfPay,
}

/// A session was booked (schema version 3 shape; see [`crate::v2::SessionScheduledV2`]).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SessionScheduled {
    /// The therapist who will treat.
    pub therapist: TherapistId,
    /// The patient to be treated.
    pub patient: PatientId,
    /// Who pays.
    pub coverage: Coverage,
    /// The referral or prescription the visit is given under, if any (`ReferralRecorded`).
    pub referral: Option<ReferralId>,
    /// The booked start, as a UTC instant.
    pub scheduled_start: UtcMicros,
    /// The booked length in minutes.
    pub planned_minutes: u16,
}

/// The manual-therapy technique a service was delivered with.
///
/// New techniques are appended at the end as unit variants; reordering would change the archived
/// discriminants of existing data. Unit variants never change the archived size (the `Other` text
/// sets it), so appending them is not a new schema version.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Technique {
    /// Long gliding strokes.
    Effleurage,
    /// Kneading.
    Petrissage,
    /// Rhythmic percussion.
    Tapotement,
    /// Swedish massage.
    Swedish,
    /// Deep tissue massage.
    DeepTissue,
    /// Myofascial release.
    MyofascialRelease,
    /// Soft tissue mobilisation.
    SoftTissueMobilisation,
    /// Joint mobilisation.
    JointMobilisation,
    /// Manual traction.
    ManualTraction,
    /// Manual lymphatic drainage.
    ManualLymphaticDrainage,
    /// Proprioceptive neuromuscular facilitation.
    Pnf,
    /// Balance and proprioception training.
    BalanceProprioception,
    /// Therapeutic exercise.
    TherapeuticExercise,
    /// Functional activities.
    FunctionalActivities,
    /// Cupping.
    Cupping,
    /// Anything else, described in free text.
    Other(String),
    /// Strengthening exercise (one of the four kinds of therapeutic exercise the billing core
    /// distinguishes; `TherapeuticExercise` remains for data recorded without the kind).
    StrengthExercise,
    /// Endurance exercise.
    EnduranceExercise,
    /// Range-of-motion exercise.
    RangeOfMotionExercise,
    /// Flexibility exercise.
    FlexibilityExercise,
}

/// The part of the body a service was delivered to.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum BodyRegion {
    /// Head and face.
    Head,
    /// Cervical region.
    Neck,
    /// Shoulder girdle.
    Shoulder,
    /// Thoracic back.
    UpperBack,
    /// Lumbar back and sacrum.
    LowerBack,
    /// Chest.
    Chest,
    /// Abdomen.
    Abdomen,
    /// Hip and gluteal region.
    Hip,
    /// Upper limb from shoulder to wrist.
    Arm,
    /// Hand and wrist.
    Hand,
    /// Lower limb from hip to ankle.
    Leg,
    /// Foot and ankle.
    Foot,
    /// Anything else, described in free text.
    Other(String),
}

/// Which side of the body a service was delivered to (added in schema version 2).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum BodySide {
    /// The patient's left side.
    Left,
    /// The patient's right side.
    Right,
    /// Both sides.
    Bilateral,
    /// The midline, such as the spine.
    Midline,
}

/// A billable manual-therapy service was delivered during the session (schema version 2 shape).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ServiceRecorded {
    /// How it was delivered.
    pub technique: Technique,
    /// The procedure code it is billed under.
    pub cpt_code: CptCode,
    /// Minutes of direct contact.
    pub minutes: u16,
    /// Where it was delivered.
    pub body_region: BodyRegion,
    /// Which side; `None` when the therapist did not record it (always `None` for version 1 data).
    pub body_side: Option<BodySide>,
    /// A free-text note for the record.
    pub description: Option<String>,
}

/// A supervised or attended modality (hot packs, ultrasound, electrical stimulation) was applied.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ModalityRecorded {
    /// The procedure code of the modality, such as `97010` or `97035`.
    pub code: CptCode,
    /// Minutes applied; zero for untimed modalities.
    pub minutes: u16,
}

/// Diagnoses were attached to the session, in order of relevance.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct DiagnosesAttached {
    /// The ICD-10 codes, primary diagnosis first.
    pub icd10_codes: Vec<Icd10Code>,
}

/// The session was cancelled before it took place.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SessionCancelled {
    /// Why, as entered by staff.
    pub reason: String,
}

/// A completed session's record was amended after completion.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SessionAmended {
    /// Why, as entered by staff (kept for audit).
    pub reason: String,
}

/// A service recorded by mistake was voided; it no longer counts towards minutes or units. The
/// original event stays in the log.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ServiceVoided {
    /// The event id of the `ServiceRecorded` (or `ModalityRecorded`) being voided.
    pub service_event: EventId,
    /// Why, as entered by staff (kept for audit).
    pub reason: String,
}
