//! The session commands and reads, without HTTP: find the session (its clinic comes from its slot
//! row, filtered by the caller's chain), check the caller's clinics, and run the command through the
//! aggregate pipeline ([`crate::aggregate::Target::run`]), whose append has the version just read
//! (or `If-Match`) as the expected version, so that a concurrent writer makes it fail with a
//! conflict instead of being overwritten. Scheduling also books the therapist's slot first, in the
//! same transaction that checks the session's references.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use claimledger_events::{
    AggregateKind, ChainId, ClinicId, CommandId, EventId, EventRecord, PatientId, PayerId,
    SessionId,
};
use claimledger_log::{AggregateAddress, LogError};
use claimledger_sessions::command::{
    CoverageTerms, DecisionContext, Payment, ReferralTerms, ScheduleSession, SessionCommand,
};
use claimledger_sessions::error::SessionError;
use claimledger_sessions::event::SessionEvent;
use claimledger_sessions::schema::{
    from_log_event, from_micros, occurred_at, recorded_id, to_log_event,
};
use claimledger_sessions::session::{Session, SessionStatus};
use sqlx::{PgConnection, PgPool};
use tracing::Span;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Loaded, StateCache, Target};
use crate::auth::Principal;
use crate::commit;
use crate::error::ApiError;
use crate::extract::CommandMeta;
use crate::idempotency::{command_id, derived_id};
use crate::startup::AppState;
use crate::store::{self, Booking, Slot, SlotRelease};

/// Where a session lives, from its slot row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub(crate) clinic: ClinicId,
    pub(crate) referral: Option<Uuid>,
    pub(crate) time_zone: Tz,
}

/// A session as a command or a read leaves it.
#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) id: Uuid,
    pub(crate) loaded: Loaded<Session>,
    pub(crate) located: Located,
}

/// Sessions as this process last decided or read them, at their versions, with where they live.
///
/// Reading a session from the log replays its commits through a consumer, several round trips.
/// Commands decide on the cached state optimistically: the append's expected version is the cached
/// one, so if another process wrote in between the append fails with a conflict, and any refusal
/// decided on cached state is checked against the log's current version (one cheap lookup) and
/// decided again on the current state when the log has moved on. Reads always check the version.
pub(crate) type SessionCache = StateCache<Session, Located>;

impl Aggregate for Session {
    type Event = SessionEvent;
    type Decoding = ClinicId;
    const RESOURCE: &'static str = "session";

    fn from_events(events: &[SessionEvent]) -> Session {
        Session::from_events(events)
    }

    fn apply(&mut self, event: &SessionEvent) {
        Session::apply(self, event);
    }

    fn decode(clinic: ClinicId, record: &EventRecord) -> Result<Option<SessionEvent>, ApiError> {
        Ok(from_log_event(
            clinic,
            record.event_id,
            from_micros(record.occurred_at)?,
            &record.event,
        )?)
    }

    fn records(events: &[SessionEvent], now: DateTime<Utc>) -> Vec<EventRecord> {
        events
            .iter()
            .map(|event| {
                commit::record_with_id(
                    to_log_event(event),
                    recorded_id(event).unwrap_or_else(|| EventId::from(Uuid::now_v7())),
                    occurred_at(event, now),
                )
            })
            .collect()
    }
}

fn target(
    state: &AppState,
    chain: ChainId,
    id: Uuid,
    located: Located,
) -> Target<'_, Session, Located> {
    Target {
        log: &state.log,
        cache: &state.sessions,
        address: AggregateAddress {
            chain,
            clinic: Some(located.clinic),
            kind: AggregateKind::Session,
            id: SessionId::from(id).into(),
        },
        id,
        whereabouts: located,
        decoding: located.clinic,
    }
}

fn parse_time_zone(name: &str) -> Result<Tz, ApiError> {
    // The zone was validated when the clinic was registered; a failure here is a corrupt row.
    name.parse::<Tz>()
        .map_err(|_| ApiError::corrupt(format!("unknown time zone {name:?}")))
}

async fn locate(pool: &PgPool, chain: ChainId, session: Uuid) -> Result<Option<Located>, ApiError> {
    store::session_row(pool, chain, session)
        .await?
        .map(|row| {
            Ok(Located {
                clinic: ClinicId::from(row.clinic_id),
                referral: row.referral_id,
                time_zone: parse_time_zone(&row.time_zone)?,
            })
        })
        .transpose()
}

/// Where the session lives: from the cache, else from its slot row; 404 naming `field` when the
/// caller's chain has no such session.
async fn located(
    state: &AppState,
    chain: ChainId,
    id: Uuid,
    field: &str,
) -> Result<Located, ApiError> {
    match state.sessions.latest(chain, id) {
        Some((located, _)) => Ok(located),
        None => locate(&state.pool, chain, id)
            .await?
            .ok_or_else(|| ApiError::not_found(field, "session")),
    }
}

fn record_ids(clinic: ClinicId, session: Uuid) {
    let span = Span::current();
    span.record("clinic_id", tracing::field::display(clinic));
    span.record("session_id", tracing::field::display(session));
}

/// Schedules a session: checks the references `command` names (clinic, therapist, patient, payer
/// and coverage, referral) in the caller's chain, books the therapist's interval, and appends the
/// first commit. `created` is false when an earlier attempt with the same `Idempotency-Key` had
/// already appended it.
pub(crate) async fn schedule(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    command: &ScheduleSession,
) -> Result<SessionState, ApiError> {
    let chain = principal.chain;
    let clinic = command.clinic;
    principal.require_clinic(clinic)?;
    let session_id = meta
        .idempotency_key
        .as_deref()
        .map_or_else(Uuid::now_v7, |key| derived_id(chain, "session", key));
    record_ids(clinic, session_id);
    let now = state.clock.now_micros();
    let provisional = Located {
        clinic,
        referral: command.referral.map(|referral| referral.0),
        time_zone: Tz::UTC,
    };
    // Read before the transaction, so that no connection (nor, below, the referral's lock) is held
    // across a round trip to NATS.
    let version = state
        .log
        .version(&target(state, chain, session_id, provisional).address)
        .await?;
    let mut transaction = state.pool.begin().await?;
    let payer_id = match command.payment {
        Payment::Payer { payer, .. } => Some(payer.as_uuid()),
        Payment::SelfPay => None,
    };
    // The references the request names, in one round trip; they are refused in this order.
    let references = store::booking_references(
        &mut transaction,
        chain,
        clinic.as_uuid(),
        command.therapist.as_uuid(),
        command.patient.as_uuid(),
        payer_id,
    )
    .await?;
    let zone = references
        .clinic_time_zone
        .ok_or_else(|| ApiError::not_found("clinic_id", "clinic"))?;
    let time_zone = parse_time_zone(&zone)?;
    if !references.therapist_found {
        return Err(ApiError::not_found("therapist_id", "therapist"));
    }
    if !references.patient_found {
        return Err(ApiError::not_found("patient_id", "patient"));
    }
    let coverage = match command.payment {
        Payment::SelfPay => None,
        Payment::Payer { coverage, .. } => {
            if !references.payer_found {
                return Err(ApiError::not_found("payment.payer_id", "payer"));
            }
            Some(
                coverage_terms(&mut transaction, chain, coverage.0)
                    .await?
                    .ok_or_else(|| ApiError::not_found("payment.coverage_id", "coverage"))?,
            )
        }
    };
    let referral = match command.referral {
        None => None,
        Some(referral) => Some(
            referral_terms(&mut transaction, chain, referral.0, session_id)
                .await?
                .ok_or_else(|| ApiError::not_found("referral_id", "referral"))?,
        ),
    };
    let located = Located {
        time_zone,
        ..provisional
    };
    let session = target(state, chain, session_id, located);
    // A new session has no commits: one version lookup replaces a replay.
    let existing = match version {
        0 => Loaded::empty(),
        _ => session.load_current().await?,
    };
    let this_command = CommandId::from(command_id(chain, meta.idempotency_key.as_deref()));
    if existing.state.status() != SessionStatus::NotScheduled {
        // A retry whose append reached the log before its answer was stored: answer as the first time.
        if existing.command_ids.contains(&this_command) {
            return Ok(SessionState {
                id: session_id,
                loaded: existing,
                located,
            });
        }
        return Err(SessionError::AlreadyScheduled.into());
    }
    let context = DecisionContext {
        now,
        clinic_time_zone: time_zone,
        coverage,
        referral,
    };
    let events = existing
        .state
        .decide(&SessionCommand::Schedule(command.clone()), &context)?;
    book_slot(&mut transaction, chain, session_id, command).await?;
    transaction.commit().await?;

    let commit = commit::build(
        principal,
        meta,
        &session.address,
        now,
        Session::records(&events, now),
    );
    let appended = match state
        .log
        .append(&session.address, existing.version, &commit)
        .await
    {
        Ok(appended) => appended,
        // The outcome is unknown: keep the slot, so a retry with the same key finds it again.
        Err(error @ LogError::Nats { .. }) => return Err(error.into()),
        Err(error) => {
            store::release_slot(&state.pool, chain, session_id, SlotRelease::Delete).await?;
            return Err(error.into());
        }
    };
    let loaded = existing.after(&events, this_command, &appended);
    if !appended.duplicate {
        state.sessions.put(chain, session_id, located, &loaded);
    }
    Ok(SessionState {
        id: session_id,
        loaded,
        located,
    })
}

async fn coverage_terms(
    connection: &mut PgConnection,
    chain: ChainId,
    coverage: Uuid,
) -> Result<Option<CoverageTerms>, sqlx::Error> {
    Ok(store::coverage_row(connection, chain, coverage)
        .await?
        .map(|row| CoverageTerms {
            patient: PatientId::from(row.patient_id),
            payer: PayerId::from(row.payer_id),
            valid_from: row.valid_from,
            valid_to: row.valid_to,
        }))
}

/// The referral's terms (locked for the rest of the transaction) and the visits booked so far.
async fn referral_terms(
    connection: &mut PgConnection,
    chain: ChainId,
    referral: Uuid,
    session: Uuid,
) -> Result<Option<ReferralTerms>, sqlx::Error> {
    Ok(store::referral_row(connection, chain, referral, session)
        .await?
        .map(|row| ReferralTerms {
            patient: PatientId::from(row.patient_id),
            issued_on: row.issued_on,
            expires_on: row.expires_on,
            authorised_visits: u32::try_from(row.authorised_visits).unwrap_or(0),
            visits_booked: u32::try_from(row.visits_booked).unwrap_or(u32::MAX),
        }))
}

/// Books the therapist's interval; an overlap is a conflict on `therapist_id`.
async fn book_slot(
    connection: &mut PgConnection,
    chain: ChainId,
    session: Uuid,
    command: &ScheduleSession,
) -> Result<(), ApiError> {
    let slot = Slot {
        session,
        clinic: command.clinic.as_uuid(),
        therapist: command.therapist.as_uuid(),
        patient: command.patient.as_uuid(),
        coverage: match command.payment {
            Payment::Payer { coverage, .. } => Some(coverage.0),
            Payment::SelfPay => None,
        },
        referral: command.referral.map(|referral| referral.0),
        start: command.scheduled_start,
        end: command.scheduled_start
            + chrono::Duration::minutes(i64::from(command.planned_minutes)),
    };
    match store::book_slot(connection, chain, &slot).await? {
        Booking::Booked => Ok(()),
        Booking::Overlaps => Err(ApiError::StateConflict {
            field: "therapist_id".to_owned(),
            reason: "the therapist has another session overlapping this interval".to_owned(),
        }),
    }
}

/// Runs one lifecycle command against an existing session of the caller's chain and clinics.
/// Cancelling and recording a no-show free the therapist's slot once appended.
pub(crate) async fn execute(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    session_id: Uuid,
    command: SessionCommand,
) -> Result<SessionState, ApiError> {
    let chain = principal.chain;
    let (located, loaded, from_cache) = match state.sessions.latest(chain, session_id) {
        Some((located, loaded)) => (located, loaded, true),
        None => {
            let located = located(state, chain, session_id, "session_id").await?;
            let loaded = target(state, chain, session_id, located)
                .load_current()
                .await?;
            (located, loaded, false)
        }
    };
    record_ids(located.clinic, session_id);
    principal.require_clinic(located.clinic)?;
    let session = target(state, chain, session_id, located);
    let now = state.clock.now_micros();
    let context = DecisionContext::at(now, located.time_zone);
    let ran = session
        .run(principal, meta, now, loaded, from_cache, |loaded| {
            if loaded.state.status() == SessionStatus::NotScheduled {
                return Err(ApiError::not_found("session_id", "session"));
            }
            Ok(loaded.state.decide(&command, &context)?)
        })
        .await?;
    if matches!(
        command,
        SessionCommand::Cancel { .. } | SessionCommand::NoShow
    ) {
        store::release_slot(&state.pool, chain, session_id, SlotRelease::Release).await?;
    }
    Ok(SessionState {
        id: session_id,
        loaded: ran.into_loaded(),
        located,
    })
}

/// Reads a session of the caller's chain and clinics at the log's current version.
pub(crate) async fn read(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<SessionState, ApiError> {
    let located = located(state, principal.chain, id, "id").await?;
    record_ids(located.clinic, id);
    principal.require_clinic(located.clinic)?;
    let loaded = target(state, principal.chain, id, located)
        .load_current()
        .await?;
    if loaded.state.status() == SessionStatus::NotScheduled {
        return Err(ApiError::not_found("id", "session"));
    }
    Ok(SessionState {
        id,
        loaded,
        located,
    })
}
