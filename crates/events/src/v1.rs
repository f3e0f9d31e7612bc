//! Frozen shapes of schema version 1 and the named upcasters that lift them to version 2 (and
//! through [`crate::v2`] to the current version).
//!
//! Nothing in this module may change: the golden fixture test encodes these types and compares the
//! bytes with `tests/fixtures/commit_v1.bin`. Structs that did not change between versions are
//! shared with the later version that still has them (for example `SessionScheduled`, frozen as
//! [`SessionScheduledV2`] when version 3 changed it); the day one of them has to change, its
//! released shape is first copied under a versioned name.

use rkyv::with::AsBox;
use rkyv::{Archive, Deserialize, Serialize};

use crate::codes::CptCode;
use crate::envelope::{Actor, AggregateKind};
use crate::ids::{AggregateId, CausationId, ChainId, ClinicId, CommandId, CorrelationId, EventId};
use crate::rules::RulesChanged;
use crate::session::{
    BodyRegion, DiagnosesAttached, ModalityRecorded, ServiceRecorded, SessionAmended,
    SessionCancelled, Technique,
};
use crate::time::UtcMicros;
use crate::v2::{CommitV2, EventRecordV2, EventV2, SessionScheduledV2};

/// `ServiceRecorded` as released in version 1: no body side.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ServiceRecordedV1 {
    /// How it was delivered.
    pub technique: Technique,
    /// The procedure code it is billed under.
    pub cpt_code: CptCode,
    /// Minutes of direct contact.
    pub minutes: u16,
    /// Where it was delivered.
    pub body_region: BodyRegion,
    /// A free-text note for the record.
    pub description: Option<String>,
}

/// The event enum as released in version 1.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum EventV1 {
    /// Unchanged in version 2 (changed in version 3).
    SessionScheduled(#[rkyv(with = AsBox)] SessionScheduledV2),
    /// Unchanged in version 2.
    CheckedIn,
    /// Gained `body_side` in version 2.
    ServiceRecorded(#[rkyv(with = AsBox)] ServiceRecordedV1),
    /// Unchanged in version 2.
    ModalityRecorded(#[rkyv(with = AsBox)] ModalityRecorded),
    /// Unchanged in version 2.
    DiagnosesAttached(#[rkyv(with = AsBox)] DiagnosesAttached),
    /// Unchanged in version 2.
    SessionCompleted,
    /// Unchanged in version 2.
    SessionCancelled(#[rkyv(with = AsBox)] SessionCancelled),
    /// Unchanged in version 2.
    SessionNoShow,
    /// Unchanged in version 2.
    SessionAmended(#[rkyv(with = AsBox)] SessionAmended),
    /// Unchanged in version 2.
    RulesChanged(#[rkyv(with = AsBox)] RulesChanged),
}

/// One event of a version 1 commit.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct EventRecordV1 {
    /// Unique across the log.
    pub event_id: EventId,
    /// When it happened in the clinic.
    pub occurred_at: UtcMicros,
    /// What happened.
    pub event: EventV1,
}

/// The commit envelope as released in version 1 (same fields as version 2; its events differ).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct CommitV1 {
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
    pub events: Vec<EventRecordV1>,
}

/// Upcaster v1 → v2 for `ServiceRecorded`: version 1 never recorded a side, so it becomes `None`.
pub fn upcast_service_recorded_v1_to_v2(service: ServiceRecordedV1) -> ServiceRecorded {
    let ServiceRecordedV1 {
        technique,
        cpt_code,
        minutes,
        body_region,
        description,
    } = service;
    ServiceRecorded {
        technique,
        cpt_code,
        minutes,
        body_region,
        body_side: None,
        description,
    }
}

/// Upcaster v1 → v2 for one event.
pub fn upcast_event_v1_to_v2(event: EventV1) -> EventV2 {
    match event {
        EventV1::SessionScheduled(payload) => EventV2::SessionScheduled(payload),
        EventV1::CheckedIn => EventV2::CheckedIn,
        EventV1::ServiceRecorded(payload) => {
            EventV2::ServiceRecorded(upcast_service_recorded_v1_to_v2(payload))
        }
        EventV1::ModalityRecorded(payload) => EventV2::ModalityRecorded(payload),
        EventV1::DiagnosesAttached(payload) => EventV2::DiagnosesAttached(payload),
        EventV1::SessionCompleted => EventV2::SessionCompleted,
        EventV1::SessionCancelled(payload) => EventV2::SessionCancelled(payload),
        EventV1::SessionNoShow => EventV2::SessionNoShow,
        EventV1::SessionAmended(payload) => EventV2::SessionAmended(payload),
        EventV1::RulesChanged(payload) => EventV2::RulesChanged(payload),
    }
}

/// Upcaster v1 → v2 for a whole commit: the envelope is unchanged, each event is upcast.
pub fn upcast_commit_v1_to_v2(commit: CommitV1) -> CommitV2 {
    let CommitV1 {
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
    CommitV2 {
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
            .map(|record| EventRecordV2 {
                event_id: record.event_id,
                occurred_at: record.occurred_at,
                event: upcast_event_v1_to_v2(record.event),
            })
            .collect(),
    }
}
