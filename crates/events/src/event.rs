//! The event enum of the current schema version, and the rule for extending it.

use rkyv::with::AsBox;
use rkyv::{Archive, Deserialize, Serialize};

use crate::claim::{ClaimAdjudicated, ClaimResubmitted, ClaimSubmitted, ClaimWrittenOff};
use crate::reference::{
    ClinicRegistered, CoverageRecorded, PatientForgotten, PatientRegistered, PayerRegistered,
    ReferralRecorded, TherapistRegistered,
};
use crate::rules::RulesChanged;
use crate::session::ServiceVoided;
use crate::session::{
    DiagnosesAttached, ModalityRecorded, ServiceRecorded, SessionAmended, SessionCancelled,
    SessionScheduled,
};

/// Every event the product records (current schema version, see [`crate::CURRENT_SCHEMA_VERSION`]).
///
/// # Versioning rule
///
/// Every variant's payload is archived behind a relative pointer (`#[rkyv(with = AsBox)]`), so the
/// archived enum is always a one-byte tag plus a four-byte pointer, whatever the payloads look like.
/// Consequences:
///
/// - **Adding a variant is not a new schema version**, provided it is appended *at the end* (rkyv
///   numbers variants in declaration order) and its payload is boxed like the others. Old data still
///   decodes; an old reader meets an unknown tag, which checked decoding reports as an error (the log
///   parks such messages rather than misreading them).
/// - **Changing the archived layout of anything already released is a new schema version**: adding,
///   removing, reordering or retyping a field of a payload struct, reordering variants, or changing a
///   nested enum in a way that changes its size. The old shape is copied into `crate::v1` (or the
///   next `vN` module) under a frozen name, the current shape changes, the envelope gains a variant in
///   [`crate::envelope::VersionedCommit`], and a named upcaster converts old to current.
///
/// The committed golden fixture test encodes the frozen version 1 types and compares the bytes with
/// the committed file, so an accidental edit of a released shape fails the build's tests.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Event {
    /// See [`SessionScheduled`].
    SessionScheduled(#[rkyv(with = AsBox)] SessionScheduled),
    /// The patient arrived and was checked in.
    CheckedIn,
    /// See [`ServiceRecorded`].
    ServiceRecorded(#[rkyv(with = AsBox)] ServiceRecorded),
    /// See [`ModalityRecorded`].
    ModalityRecorded(#[rkyv(with = AsBox)] ModalityRecorded),
    /// See [`DiagnosesAttached`].
    DiagnosesAttached(#[rkyv(with = AsBox)] DiagnosesAttached),
    /// The session took place and its record is complete.
    SessionCompleted,
    /// See [`SessionCancelled`].
    SessionCancelled(#[rkyv(with = AsBox)] SessionCancelled),
    /// The patient did not attend.
    SessionNoShow,
    /// See [`SessionAmended`].
    SessionAmended(#[rkyv(with = AsBox)] SessionAmended),
    /// See [`RulesChanged`].
    RulesChanged(#[rkyv(with = AsBox)] RulesChanged),
    /// See [`ClinicRegistered`].
    ClinicRegistered(#[rkyv(with = AsBox)] ClinicRegistered),
    /// See [`TherapistRegistered`].
    TherapistRegistered(#[rkyv(with = AsBox)] TherapistRegistered),
    /// See [`PayerRegistered`].
    PayerRegistered(#[rkyv(with = AsBox)] PayerRegistered),
    /// See [`PatientRegistered`].
    PatientRegistered(#[rkyv(with = AsBox)] PatientRegistered),
    /// See [`PatientForgotten`].
    PatientForgotten(#[rkyv(with = AsBox)] PatientForgotten),
    /// See [`CoverageRecorded`].
    CoverageRecorded(#[rkyv(with = AsBox)] CoverageRecorded),
    /// See [`ReferralRecorded`].
    ReferralRecorded(#[rkyv(with = AsBox)] ReferralRecorded),
    /// See [`ServiceVoided`].
    ServiceVoided(#[rkyv(with = AsBox)] ServiceVoided),
    /// See [`ClaimSubmitted`].
    ClaimSubmitted(#[rkyv(with = AsBox)] ClaimSubmitted),
    /// See [`ClaimAdjudicated`].
    ClaimAdjudicated(#[rkyv(with = AsBox)] ClaimAdjudicated),
    /// See [`ClaimResubmitted`].
    ClaimResubmitted(#[rkyv(with = AsBox)] ClaimResubmitted),
    /// See [`ClaimWrittenOff`].
    ClaimWrittenOff(#[rkyv(with = AsBox)] ClaimWrittenOff),
}

impl Event {
    /// The stable name of the event type, carried in log headers so tools can filter without decoding.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::SessionScheduled(_) => "SessionScheduled",
            Self::CheckedIn => "CheckedIn",
            Self::ServiceRecorded(_) => "ServiceRecorded",
            Self::ModalityRecorded(_) => "ModalityRecorded",
            Self::DiagnosesAttached(_) => "DiagnosesAttached",
            Self::SessionCompleted => "SessionCompleted",
            Self::SessionCancelled(_) => "SessionCancelled",
            Self::SessionNoShow => "SessionNoShow",
            Self::SessionAmended(_) => "SessionAmended",
            Self::RulesChanged(_) => "RulesChanged",
            Self::ClinicRegistered(_) => "ClinicRegistered",
            Self::TherapistRegistered(_) => "TherapistRegistered",
            Self::PayerRegistered(_) => "PayerRegistered",
            Self::PatientRegistered(_) => "PatientRegistered",
            Self::PatientForgotten(_) => "PatientForgotten",
            Self::CoverageRecorded(_) => "CoverageRecorded",
            Self::ReferralRecorded(_) => "ReferralRecorded",
            Self::ServiceVoided(_) => "ServiceVoided",
            Self::ClaimSubmitted(_) => "ClaimSubmitted",
            Self::ClaimAdjudicated(_) => "ClaimAdjudicated",
            Self::ClaimResubmitted(_) => "ClaimResubmitted",
            Self::ClaimWrittenOff(_) => "ClaimWrittenOff",
        }
    }
}
