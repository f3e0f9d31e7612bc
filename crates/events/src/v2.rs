//! Frozen shapes of schema version 2 and the named upcasters that lift them to version 3.
//!
//! Nothing in this module may change: the golden fixture test encodes these types and compares the
//! bytes with `tests/fixtures/commit_v2.bin`. Version 3 changed only `SessionScheduled` (it gained
//! the referral) and its `Coverage` (the payer's `member_id` text became a typed coverage id), so
//! those two are copied here under `V2` names; every other payload is shared with version 3.

use rkyv::with::AsBox;
use rkyv::{Archive, Deserialize, Serialize};
use uuid::Uuid;

use crate::claim::{ClaimAdjudicated, ClaimResubmitted, ClaimSubmitted, ClaimWrittenOff};
use crate::envelope::{Actor, AggregateKind, Commit, EventRecord};
use crate::event::Event;
use crate::ids::{
    AggregateId, CausationId, ChainId, ClinicId, CommandId, CorrelationId, CoverageId, EventId,
    PatientId, PayerId, TherapistId,
};
use crate::reference::{
    ClinicRegistered, CoverageRecorded, PatientForgotten, PatientRegistered, PayerRegistered,
    ReferralRecorded, TherapistRegistered,
};
use crate::rules::RulesChanged;
use crate::session::{
    Coverage, DiagnosesAttached, ModalityRecorded, ServiceRecorded, ServiceVoided, SessionAmended,
    SessionCancelled, SessionScheduled,
};
use crate::time::UtcMicros;

/// `Coverage` as released in versions 1 and 2.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum CoverageV2 {
    /// A third-party payer covers the session.
    Payer {
        /// The payer whose rules price the claim.
        payer: PayerId,
        /// Despite its name, the sessions API wrote the coverage's id here as hyphenated text (a
        /// member id is PHI and never entered the log).
        member_id: String,
    },
    /// The patient pays the clinic directly.
    SelfPay,
}

/// `SessionScheduled` as released in versions 1 and 2: no referral.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SessionScheduledV2 {
    /// The therapist who will treat.
    pub therapist: TherapistId,
    /// The patient to be treated.
    pub patient: PatientId,
    /// Who pays.
    pub coverage: CoverageV2,
    /// The booked start, as a UTC instant.
    pub scheduled_start: UtcMicros,
    /// The booked length in minutes.
    pub planned_minutes: u16,
}

/// The event enum as released in version 2 (the reference and claim events were appended to it
/// without a new version, as the versioning rule allows).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum EventV2 {
    /// Changed in version 3: gained `referral`, and its coverage names a typed coverage id.
    SessionScheduled(#[rkyv(with = AsBox)] SessionScheduledV2),
    /// Unchanged in version 3.
    CheckedIn,
    /// Unchanged in version 3.
    ServiceRecorded(#[rkyv(with = AsBox)] ServiceRecorded),
    /// Unchanged in version 3.
    ModalityRecorded(#[rkyv(with = AsBox)] ModalityRecorded),
    /// Unchanged in version 3.
    DiagnosesAttached(#[rkyv(with = AsBox)] DiagnosesAttached),
    /// Unchanged in version 3.
    SessionCompleted,
    /// Unchanged in version 3.
    SessionCancelled(#[rkyv(with = AsBox)] SessionCancelled),
    /// Unchanged in version 3.
    SessionNoShow,
    /// Unchanged in version 3.
    SessionAmended(#[rkyv(with = AsBox)] SessionAmended),
    /// Unchanged in version 3.
    RulesChanged(#[rkyv(with = AsBox)] RulesChanged),
    /// Unchanged in version 3.
    ClinicRegistered(#[rkyv(with = AsBox)] ClinicRegistered),
    /// Unchanged in version 3.
    TherapistRegistered(#[rkyv(with = AsBox)] TherapistRegistered),
    /// Unchanged in version 3.
    PayerRegistered(#[rkyv(with = AsBox)] PayerRegistered),
    /// Unchanged in version 3.
    PatientRegistered(#[rkyv(with = AsBox)] PatientRegistered),
    /// Unchanged in version 3.
    PatientForgotten(#[rkyv(with = AsBox)] PatientForgotten),
    /// Unchanged in version 3.
    CoverageRecorded(#[rkyv(with = AsBox)] CoverageRecorded),
    /// Unchanged in version 3.
    ReferralRecorded(#[rkyv(with = AsBox)] ReferralRecorded),
    /// Unchanged in version 3.
    ServiceVoided(#[rkyv(with = AsBox)] ServiceVoided),
    /// Unchanged in version 3.
    ClaimSubmitted(#[rkyv(with = AsBox)] ClaimSubmitted),
    /// Unchanged in version 3.
    ClaimAdjudicated(#[rkyv(with = AsBox)] ClaimAdjudicated),
    /// Unchanged in version 3.
    ClaimResubmitted(#[rkyv(with = AsBox)] ClaimResubmitted),
    /// Unchanged in version 3.
    ClaimWrittenOff(#[rkyv(with = AsBox)] ClaimWrittenOff),
}

/// One event of a version 2 commit.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct EventRecordV2 {
    /// Unique across the log.
    pub event_id: EventId,
    /// When it happened in the clinic.
    pub occurred_at: UtcMicros,
    /// What happened.
    pub event: EventV2,
}

/// The commit envelope as released in version 2 (same fields as version 3; its events differ).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct CommitV2 {
    /// The command's idempotency key.
    pub command_id: CommandId,
    /// The tenant.
    pub chain: ChainId,
    /// The clinic, or `None` for chain-wide aggregates.
    pub clinic: Option<ClinicId>,
    /// The kind of aggregate.
    pub aggregate_kind: AggregateKind,
    /// The aggregate within its kind.
    pub aggregate_id: AggregateId,
    /// When the command was accepted.
    pub recorded_at: UtcMicros,
    /// Who issued the command.
    pub actor: Actor,
    /// The external request this commit ultimately serves.
    pub correlation_id: CorrelationId,
    /// The command or event that directly caused this commit.
    pub causation_id: Option<CausationId>,
    /// The events, in order.
    pub events: Vec<EventRecordV2>,
}

/// Namespace of the coverage ids derived from version 2 `member_id` texts that are not UUIDs (a
/// fixed, random UUID; never change it, or the same old commit would upcast to another id).
const MEMBER_ID_TEXT_NAMESPACE: Uuid = Uuid::from_u128(0x3f5e_91c2_6d0a_4b7e_a3c8_52d1_e8f4_07b9);

/// Upcaster v2 → v3 for a coverage reference.
///
/// The sessions API always wrote the coverage id as hyphenated UUID text, which parses back to the
/// same id. Any other text (a foreign writer, or a hand-made commit) must still upcast without a
/// panic and to the same id on every replay, so that a rebuild reproduces the live read models: it
/// becomes the UUIDv5 of the text under a fixed namespace. That id names no recorded coverage, which
/// readers report as an unknown coverage rather than losing the session.
pub fn upcast_coverage_v2_to_v3(coverage: CoverageV2) -> Coverage {
    match coverage {
        CoverageV2::Payer { payer, member_id } => {
            let id = Uuid::parse_str(&member_id)
                .unwrap_or_else(|_| Uuid::new_v5(&MEMBER_ID_TEXT_NAMESPACE, member_id.as_bytes()));
            Coverage::Payer {
                payer,
                coverage: CoverageId::from(id),
            }
        }
        CoverageV2::SelfPay => Coverage::SelfPay,
    }
}

/// Upcaster v2 → v3 for `SessionScheduled`: version 2 never recorded the referral on the log (the
/// sessions API kept it in PostgreSQL), so it becomes `None`.
pub fn upcast_session_scheduled_v2_to_v3(scheduled: SessionScheduledV2) -> SessionScheduled {
    let SessionScheduledV2 {
        therapist,
        patient,
        coverage,
        scheduled_start,
        planned_minutes,
    } = scheduled;
    SessionScheduled {
        therapist,
        patient,
        coverage: upcast_coverage_v2_to_v3(coverage),
        referral: None,
        scheduled_start,
        planned_minutes,
    }
}

/// Upcaster v2 → v3 for one event.
pub fn upcast_event_v2_to_v3(event: EventV2) -> Event {
    match event {
        EventV2::SessionScheduled(payload) => {
            Event::SessionScheduled(upcast_session_scheduled_v2_to_v3(payload))
        }
        EventV2::CheckedIn => Event::CheckedIn,
        EventV2::ServiceRecorded(payload) => Event::ServiceRecorded(payload),
        EventV2::ModalityRecorded(payload) => Event::ModalityRecorded(payload),
        EventV2::DiagnosesAttached(payload) => Event::DiagnosesAttached(payload),
        EventV2::SessionCompleted => Event::SessionCompleted,
        EventV2::SessionCancelled(payload) => Event::SessionCancelled(payload),
        EventV2::SessionNoShow => Event::SessionNoShow,
        EventV2::SessionAmended(payload) => Event::SessionAmended(payload),
        EventV2::RulesChanged(payload) => Event::RulesChanged(payload),
        EventV2::ClinicRegistered(payload) => Event::ClinicRegistered(payload),
        EventV2::TherapistRegistered(payload) => Event::TherapistRegistered(payload),
        EventV2::PayerRegistered(payload) => Event::PayerRegistered(payload),
        EventV2::PatientRegistered(payload) => Event::PatientRegistered(payload),
        EventV2::PatientForgotten(payload) => Event::PatientForgotten(payload),
        EventV2::CoverageRecorded(payload) => Event::CoverageRecorded(payload),
        EventV2::ReferralRecorded(payload) => Event::ReferralRecorded(payload),
        EventV2::ServiceVoided(payload) => Event::ServiceVoided(payload),
        EventV2::ClaimSubmitted(payload) => Event::ClaimSubmitted(payload),
        EventV2::ClaimAdjudicated(payload) => Event::ClaimAdjudicated(payload),
        EventV2::ClaimResubmitted(payload) => Event::ClaimResubmitted(payload),
        EventV2::ClaimWrittenOff(payload) => Event::ClaimWrittenOff(payload),
    }
}

/// Upcaster v2 → v3 for a whole commit: the envelope is unchanged, each event is upcast.
pub fn upcast_commit_v2_to_v3(commit: CommitV2) -> Commit {
    let CommitV2 {
        command_id,
        chain,
        clinic,
        aggregate_kind,
        aggregate_id,
        recorded_at,
        actor,
        correlation_id,
        causation_id,
        events,
    } = commit;
    Commit {
        command_id,
        chain,
        clinic,
        aggregate_kind,
        aggregate_id,
        recorded_at,
        actor,
        correlation_id,
        causation_id,
        events: events
            .into_iter()
            .map(|record| EventRecord {
                event_id: record.event_id,
                occurred_at: record.occurred_at,
                event: upcast_event_v2_to_v3(record.event),
            })
            .collect(),
    }
}
