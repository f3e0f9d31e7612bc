//! The one place a commit is built: every append of the API (sessions, claims, reference data)
//! records the same envelope — the command id from the `Idempotency-Key`, the key as the actor, the
//! request's correlation id — so that a retry, an audit and the projector read them alike.

use chrono::{DateTime, Utc};
use claimledger_events::{
    Actor, ActorKind, CommandId, Commit, CorrelationId, Event, EventId, EventRecord,
};
use claimledger_log::AggregateAddress;
use claimledger_sessions::schema::to_micros;
use uuid::Uuid;

use crate::auth::Principal;
use crate::extract::CommandMeta;
use crate::idempotency::command_id;

/// The commit of `events` to `address`, recorded at `now` on behalf of `principal`.
pub(crate) fn build(
    principal: &Principal,
    meta: &CommandMeta,
    address: &AggregateAddress,
    now: DateTime<Utc>,
    events: Vec<EventRecord>,
) -> Commit {
    Commit {
        command_id: CommandId::from(command_id(principal.chain, meta.idempotency_key.as_deref())),
        chain: address.chain,
        clinic: address.clinic,
        aggregate_kind: address.kind,
        aggregate_id: address.id,
        recorded_at: to_micros(now),
        actor: Actor {
            kind: ActorKind::Staff,
            id: format!("api-key:{}", principal.key_id),
        },
        correlation_id: CorrelationId::from(meta.correlation_id),
        causation_id: None,
        events,
    }
}

/// `event` as a record with a new id, occurring at `at`.
pub(crate) fn record(event: Event, at: DateTime<Utc>) -> EventRecord {
    record_with_id(event, EventId::from(Uuid::now_v7()), at)
}

/// `event` as a record with the id the caller chose (a service's id is its event's), at `at`.
pub(crate) fn record_with_id(event: Event, event_id: EventId, at: DateTime<Utc>) -> EventRecord {
    EventRecord {
        event_id,
        occurred_at: to_micros(at),
        event,
    }
}
