//! Builders of realistic commits and aggregate addresses for tests and benchmarks.

use std::time::{SystemTime, UNIX_EPOCH};

use claimledger_events::session::{
    BodyRegion, BodySide, Coverage, ServiceRecorded, SessionScheduled, Technique,
};
use claimledger_events::{
    Actor, ActorKind, AggregateKind, ChainId, ClinicId, Commit, CptCode, Event, EventRecord,
    UtcMicros,
};
use claimledger_log::AggregateAddress;
use uuid::Uuid;

/// A new session aggregate of `clinic` in `chain`.
pub fn new_session(chain: ChainId, clinic: ClinicId) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: Some(clinic),
        kind: AggregateKind::Session,
        id: Uuid::now_v7().into(),
    }
}

/// The payer-rules aggregate of a new payer: chain-wide, no clinic.
pub fn new_payer_rules(chain: ChainId) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: None,
        kind: AggregateKind::PayerRules,
        id: Uuid::now_v7().into(),
    }
}

/// A new random chain id.
pub fn new_chain() -> ChainId {
    Uuid::new_v4().into()
}

/// A new random clinic id.
pub fn new_clinic() -> ClinicId {
    Uuid::new_v4().into()
}

/// The current time as the log stores it.
pub fn now() -> UtcMicros {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    UtcMicros(i64::try_from(since_epoch.as_micros()).expect("fits until the year 294247"))
}

/// A commit of `events` for `aggregate`, with a fresh command id and event ids.
pub fn commit_for(aggregate: &AggregateAddress, events: Vec<Event>) -> Commit {
    let recorded_at = now();
    Commit {
        command_id: Uuid::now_v7().into(),
        chain: aggregate.chain,
        clinic: aggregate.clinic,
        aggregate_kind: aggregate.kind,
        aggregate_id: aggregate.id,
        recorded_at,
        actor: Actor {
            kind: ActorKind::Staff,
            id: "front-desk-1".to_owned(),
        },
        correlation_id: Uuid::now_v7().into(),
        causation_id: None,
        events: events
            .into_iter()
            .map(|event| EventRecord {
                event_id: Uuid::now_v7().into(),
                occurred_at: recorded_at,
                event,
            })
            .collect(),
    }
}

/// A typical "schedule" event.
pub fn scheduled() -> Event {
    Event::SessionScheduled(SessionScheduled {
        therapist: Uuid::new_v4().into(),
        patient: Uuid::new_v4().into(),
        coverage: Coverage::Payer {
            payer: Uuid::new_v4().into(),
            coverage: Uuid::new_v4().into(),
        },
        referral: None,
        scheduled_start: now(),
        planned_minutes: 60,
    })
}

/// A typical recorded service of `minutes` minutes.
pub fn service(minutes: u16) -> Event {
    Event::ServiceRecorded(ServiceRecorded {
        technique: Technique::SoftTissueMobilisation,
        cpt_code: CptCode::new("97140").expect("a valid CPT code"),
        minutes,
        body_region: BodyRegion::Neck,
        body_side: Some(BodySide::Left),
        description: Some("upper trapezius, levator scapulae".to_owned()),
    })
}
