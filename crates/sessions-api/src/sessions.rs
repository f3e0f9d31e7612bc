//! The session endpoints: schedule, then one endpoint per lifecycle command, and a read.
//!
//! Every command runs the same way: find the session (its clinic comes from its slot row, filtered
//! by the key's chain), read its commits from the log, decide with the pure domain, and append the
//! new events in one commit with the version just read (or `If-Match`) as the expected version, so
//! a concurrent writer makes this append fail with 409 instead of being overwritten. Refusals answer
//! 4xx and write nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_billing::codes::CptCode;
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{
    AggregateKind, ChainId, ClinicId, CommandId, Commit, EventId, EventRecord, PatientId, PayerId,
    SessionId, TherapistId,
};
use claimledger_http_edge::edge::ApiPath;
use claimledger_log::{AggregateAddress, LogError};
use claimledger_sessions::body::{BodyRegion, BodySide};
use claimledger_sessions::command::{
    CoverageId, CoverageTerms, DecisionContext, Payment, RecordModality, RecordService, ReferralId,
    ReferralTerms, ScheduleSession, SessionCommand,
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

use crate::aggregate::{self, Aggregate, Loaded, Precondition, StateCache};
use crate::auth::{Principal, Role};
use crate::commit;
use crate::dto::{
    AttachDiagnosesRequest, ModalityView, PaymentDto, ReasonRequest, RecordModalityRequest,
    RecordServiceRequest, ScheduleSessionRequest, ServiceView, SessionView, parse_technique,
    technique_word,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, command_id, derived_id, run_idempotent};
use crate::startup::AppState;
use crate::store::{self, Booking, Slot, SlotRelease};

/// The roles that may record visits.
const RECORDERS: &[Role] = &[Role::FrontDesk];
/// The roles that may read sessions.
const READERS: &[Role] = &[Role::FrontDesk, Role::Billing, Role::Admin];

/// Where a session lives, from its slot row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    clinic: ClinicId,
    referral: Option<Uuid>,
    time_zone: Tz,
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
}

/// The session at the log's current version (cached when the cache holds that version).
async fn load_current(
    state: &AppState,
    address: &AggregateAddress,
    located: Located,
    session: Uuid,
) -> Result<Loaded<Session>, ApiError> {
    aggregate::load_current(
        &state.log,
        &state.sessions,
        address,
        session,
        located,
        located.clinic,
    )
    .await
}

fn address_of(chain: ChainId, clinic: ClinicId, session: Uuid) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: Some(clinic),
        kind: AggregateKind::Session,
        id: SessionId::from(session).into(),
    }
}

fn parse_time_zone(name: &str) -> Result<Tz, ApiError> {
    // The zone was validated when the clinic was registered; a failure here is a corrupt row.
    name.parse::<Tz>().map_err(|_| {
        ApiError::Database(sqlx::Error::Decode(
            format!("unknown time zone {name:?}").into(),
        ))
    })
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

fn build_commit(
    principal: &Principal,
    meta: &CommandMeta,
    address: &AggregateAddress,
    events: &[SessionEvent],
    now: DateTime<Utc>,
) -> Commit {
    let records = events
        .iter()
        .map(|event| {
            commit::record_with_id(
                to_log_event(event),
                recorded_id(event).unwrap_or_else(|| EventId::from(Uuid::now_v7())),
                occurred_at(event, now),
            )
        })
        .collect();
    commit::build(principal, meta, address, now, records)
}

fn view(id: Uuid, loaded: &Loaded<Session>, located: &Located) -> Result<SessionView, ApiError> {
    let session = &loaded.state;
    let booking = session
        .booking()
        .ok_or_else(|| ApiError::not_found("session_id", "session"))?;
    Ok(SessionView {
        id,
        version: loaded.version,
        status: session.status().as_str().to_owned(),
        clinic_id: booking.clinic.as_uuid(),
        therapist_id: booking.therapist.as_uuid(),
        patient_id: booking.patient.as_uuid(),
        payment: match booking.payment {
            Payment::Payer { payer, coverage } => PaymentDto::Payer {
                payer_id: payer.as_uuid(),
                coverage_id: coverage.0,
            },
            Payment::SelfPay => PaymentDto::SelfPay,
        },
        referral_id: located.referral,
        scheduled_start: booking.scheduled_start,
        planned_minutes: booking.planned_minutes,
        date_of_service: session
            .date_of_service(located.time_zone)
            .unwrap_or(NaiveDate::MIN),
        checked_in_at: session.checked_in_at(),
        completed_at: session.completed_at(),
        services: session
            .services()
            .iter()
            .map(|service| ServiceView {
                event_id: service.id.as_uuid(),
                technique: technique_word(service.technique),
                code: service.code.as_str().to_owned(),
                minutes: service.minutes,
                body_region: service.body_region.to_string(),
                body_side: service.body_side.map(|side| side.as_str().to_owned()),
                description: service.description.clone(),
            })
            .collect(),
        modalities: session
            .modalities()
            .iter()
            .map(|modality| ModalityView {
                event_id: modality.id.as_uuid(),
                code: modality.code.as_str().to_owned(),
                minutes: modality.minutes,
            })
            .collect(),
        diagnoses: session
            .diagnoses()
            .iter()
            .map(|code| code.as_str().to_owned())
            .collect(),
        recorded_service_minutes: session.recorded_service_minutes(),
        cancellation_reason: session.cancellation_reason().map(str::to_owned),
        amendment_reasons: session.amendment_reasons().to_vec(),
    })
}

fn answer(
    status: StatusCode,
    id: Uuid,
    loaded: &Loaded<Session>,
    located: &Located,
) -> Result<Answer, ApiError> {
    Ok(Answer {
        status,
        version: Some(loaded.version),
        location: (status == StatusCode::CREATED).then(|| format!("/v1/sessions/{id}")),
        body: serde_json::to_value(view(id, loaded, located)?)?,
    })
}

fn record_ids(clinic: ClinicId, session: Uuid) {
    let span = Span::current();
    span.record("clinic_id", tracing::field::display(clinic));
    span.record("session_id", tracing::field::display(session));
}

/// Domain refusals about the schedule's references name the request's fields.
fn schedule_error(error: SessionError) -> ApiError {
    let api_error = ApiError::from(error);
    match api_error {
        ApiError::Invalid { field, reason } if field == "coverage_id" => ApiError::Invalid {
            field: "payment.coverage_id".to_owned(),
            reason,
        },
        other => other,
    }
}

/// Schedules a session (front desk). The therapist's slot is booked atomically before the first
/// event is appended; an overlapping session of the same therapist answers 409.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = ScheduleSessionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 201, body = SessionView, headers(("ETag" = String, description = "The session version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn schedule(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<ScheduleSessionRequest>,
) -> Response {
    if let Err(error) = principal.require_role(RECORDERS) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = body.parse()?;
        schedule_session(&state, &principal, &meta, &request).await
    })
    .await
}

async fn schedule_session(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    request: &ScheduleSessionRequest,
) -> Result<Answer, ApiError> {
    let chain = principal.chain;
    let clinic = ClinicId::from(request.clinic_id);
    principal.require_clinic(clinic)?;
    let session_id = meta
        .idempotency_key
        .as_deref()
        .map_or_else(Uuid::now_v7, |key| derived_id(chain, "session", key));
    record_ids(clinic, session_id);
    let now = state.clock.now_micros();
    let address = address_of(chain, clinic, session_id);
    // Read before the transaction, so that no connection (nor, below, the referral's lock) is held
    // across a round trip to NATS.
    let version = state.log.version(&address).await?;
    let mut transaction = state.pool.begin().await?;
    let payer_id = match request.payment {
        PaymentDto::Payer { payer_id, .. } => Some(payer_id),
        PaymentDto::SelfPay => None,
    };
    // The references the request names, in one round trip; they are refused in this order.
    let references = store::booking_references(
        &mut transaction,
        chain,
        clinic.as_uuid(),
        request.therapist_id,
        request.patient_id,
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
    let (payment, coverage) = match request.payment {
        PaymentDto::SelfPay => (Payment::SelfPay, None),
        PaymentDto::Payer {
            payer_id,
            coverage_id,
        } => {
            if !references.payer_found {
                return Err(ApiError::not_found("payment.payer_id", "payer"));
            }
            let terms = coverage_terms(&mut transaction, chain, coverage_id)
                .await?
                .ok_or_else(|| ApiError::not_found("payment.coverage_id", "coverage"))?;
            (
                Payment::Payer {
                    payer: PayerId::from(payer_id),
                    coverage: CoverageId(coverage_id),
                },
                Some(terms),
            )
        }
    };
    let referral = match request.referral_id {
        None => None,
        Some(referral_id) => Some(
            referral_terms(&mut transaction, chain, referral_id, session_id)
                .await?
                .ok_or_else(|| ApiError::not_found("referral_id", "referral"))?,
        ),
    };
    let command = ScheduleSession {
        clinic,
        therapist: TherapistId::from(request.therapist_id),
        patient: PatientId::from(request.patient_id),
        payment,
        referral: request.referral_id.map(ReferralId),
        scheduled_start: request.scheduled_start,
        planned_minutes: request.planned_minutes,
    };
    let located = Located {
        clinic,
        referral: request.referral_id,
        time_zone,
    };
    // A new session has no commits: one version lookup replaces a replay.
    let existing = match version {
        0 => Loaded::empty(),
        _ => load_current(state, &address, located, session_id).await?,
    };
    let this_command = CommandId::from(command_id(chain, meta.idempotency_key.as_deref()));
    if existing.state.status() != SessionStatus::NotScheduled {
        // A retry whose append reached the log before its answer was stored: answer as the first time.
        if existing.command_ids.contains(&this_command) {
            return answer(StatusCode::CREATED, session_id, &existing, &located);
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
        .decide(&SessionCommand::Schedule(command.clone()), &context)
        .map_err(schedule_error)?;
    book_slot(&mut transaction, chain, session_id, request, &command).await?;
    transaction.commit().await?;

    let commit = build_commit(principal, meta, &address, &events, now);
    let appended = match state.log.append(&address, existing.version, &commit).await {
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
    answer(StatusCode::CREATED, session_id, &loaded, &located)
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
    request: &ScheduleSessionRequest,
    command: &ScheduleSession,
) -> Result<(), ApiError> {
    let slot = Slot {
        session,
        clinic: request.clinic_id,
        therapist: request.therapist_id,
        patient: request.patient_id,
        coverage: match command.payment {
            Payment::Payer { coverage, .. } => Some(coverage.0),
            Payment::SelfPay => None,
        },
        referral: request.referral_id,
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

/// Runs one lifecycle command against an existing session.
async fn execute(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    session_id: Uuid,
    command: SessionCommand,
) -> Result<Answer, ApiError> {
    let chain = principal.chain;
    let (located, mut loaded, mut from_cache) = match state.sessions.latest(chain, session_id) {
        Some((located, loaded)) => (located, loaded, true),
        None => {
            let located = locate(&state.pool, chain, session_id)
                .await?
                .ok_or_else(|| ApiError::not_found("session_id", "session"))?;
            let address = address_of(chain, located.clinic, session_id);
            let loaded = load_current(state, &address, located, session_id).await?;
            (located, loaded, false)
        }
    };
    record_ids(located.clinic, session_id);
    principal.require_clinic(located.clinic)?;
    let address = address_of(chain, located.clinic, session_id);
    loop {
        match decide_and_append(
            state, principal, meta, session_id, &command, located, &address, &loaded,
        )
        .await
        {
            // A refusal decided on cached state stands only if the log has not moved on since.
            Err(
                error @ (ApiError::VersionConflict { .. }
                | ApiError::StateConflict { .. }
                | ApiError::Invalid { .. }
                | ApiError::NotFound { .. }),
            ) if from_cache => {
                from_cache = false;
                if state.log.version(&address).await? == loaded.version {
                    return Err(error);
                }
                loaded = aggregate::read(&state.log, &address, located.clinic).await?;
                state.sessions.put(chain, session_id, located, &loaded);
            }
            outcome => return outcome,
        }
    }
}

/// Decides `command` on `loaded` and appends the events with `loaded`'s version as the expected one.
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename these.
async fn decide_and_append(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    session_id: Uuid,
    command: &SessionCommand,
    located: Located,
    address: &AggregateAddress,
    loaded: &Loaded<Session>,
) -> Result<Answer, ApiError> {
    if loaded.state.status() == SessionStatus::NotScheduled {
        return Err(ApiError::not_found("session_id", "session"));
    }
    let this_command = match aggregate::precondition(principal.chain, meta, loaded)? {
        // Already appended by an earlier attempt whose answer was lost: nothing new is written.
        Precondition::AlreadyAppended => {
            return answer(StatusCode::OK, session_id, loaded, &located);
        }
        Precondition::Proceed(command) => command,
    };
    let now = state.clock.now_micros();
    let events = loaded
        .state
        .decide(command, &DecisionContext::at(now, located.time_zone))?;
    let commit = build_commit(principal, meta, address, &events, now);
    let appended = state.log.append(address, loaded.version, &commit).await?;
    if matches!(
        command,
        SessionCommand::Cancel { .. } | SessionCommand::NoShow
    ) {
        store::release_slot(
            &state.pool,
            principal.chain,
            session_id,
            SlotRelease::Release,
        )
        .await?;
    }
    let loaded = if appended.duplicate {
        load_current(state, address, located, session_id).await?
    } else {
        let next = loaded.after(&events, this_command, &appended);
        state
            .sessions
            .put(principal.chain, session_id, located, &next);
        next
    };
    answer(StatusCode::OK, session_id, &loaded, &located)
}

/// Parses a request into a command and runs it idempotently.
async fn run_command(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    raw: &[u8],
    session_id: Uuid,
    command: Result<SessionCommand, ApiError>,
) -> Response {
    if let Err(error) = principal.require_role(RECORDERS) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, principal, meta, raw, || async {
        let command = command?;
        execute(state, principal, meta, session_id, command).await
    })
    .await
}

fn code(field: &str, text: &str) -> Result<CptCode, ApiError> {
    CptCode::parse(field, text)
        .map_err(|error| ApiError::invalid(field, format!("{:?} {}", error.value, error.problem)))
}

fn session_error(error: SessionError) -> ApiError {
    error.into()
}

fn service_command(request: &RecordServiceRequest) -> Result<SessionCommand, ApiError> {
    let technique = parse_technique(&request.technique).ok_or_else(|| {
        ApiError::invalid(
            "technique",
            format!(
                "{:?} is not a technique (e.g. swedish_massage, myofascial_release, cupping)",
                request.technique
            ),
        )
    })?;
    Ok(SessionCommand::RecordService(RecordService {
        id: EventId::from(Uuid::now_v7()),
        technique,
        code: code("code", &request.code)?,
        minutes: request.minutes,
        body_region: BodyRegion::parse("body_region", &request.body_region)
            .map_err(session_error)?,
        body_side: request
            .body_side
            .as_deref()
            .map(|side| BodySide::parse("body_side", side))
            .transpose()
            .map_err(session_error)?,
        description: request.description.clone(),
    }))
}

fn diagnoses_command(request: &AttachDiagnosesRequest) -> Result<SessionCommand, ApiError> {
    let codes = request
        .codes
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let field = format!("codes[{index}]");
            Icd10Code::parse(&field, text).map_err(|error| {
                ApiError::invalid(&field, format!("{:?} {}", error.value, error.problem))
            })
        })
        .collect::<Result<Vec<Icd10Code>, ApiError>>()?;
    Ok(SessionCommand::AttachDiagnoses(codes))
}

/// Reads a session (front desk, billing or admin).
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path, description = "The session's id")),
    responses((status = 200, body = SessionView, headers(("ETag" = String, description = "The session version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_role(READERS)?;
    let located = match state.sessions.latest(principal.chain, id) {
        Some((located, _)) => located,
        None => locate(&state.pool, principal.chain, id)
            .await?
            .ok_or_else(|| ApiError::not_found("id", "session"))?,
    };
    record_ids(located.clinic, id);
    principal.require_clinic(located.clinic)?;
    let address = address_of(principal.chain, located.clinic, id);
    let loaded = load_current(&state, &address, located, id).await?;
    if loaded.state.status() == SessionStatus::NotScheduled {
        return Err(ApiError::not_found("id", "session"));
    }
    answer(StatusCode::OK, id, &loaded, &located)
}

/// Declares a lifecycle endpoint with a JSON body.
macro_rules! command_with_body {
    ($(#[$doc:meta])* $name:ident, $path:literal, $request:ty, $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "sessions", request_body = $request,
            params(("id" = Uuid, Path, description = "The session's id"),
                ("If-Match" = Option<String>, Header, description = "The session version the command is based on (its ETag)"),
                ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
            responses((status = 200, body = SessionView, headers(("ETag" = String, description = "The new session version"))),
                (status = "4XX", body = Problem, content_type = "application/problem+json")),
            security(("api_key" = [])))]
        pub(crate) async fn $name(State(state): State<AppState>, principal: Principal, meta: CommandMeta, ApiPath(id): ApiPath<Uuid>, body: JsonBody<$request>) -> Response {
            let build: fn(&$request) -> Result<SessionCommand, ApiError> = $build;
            let command = body.parse().and_then(|request| build(&request));
            run_command(&state, &principal, &meta, &body.raw, id, command).await
        }
    };
}

/// Declares a lifecycle endpoint without a body.
macro_rules! command_without_body {
    ($(#[$doc:meta])* $name:ident, $path:literal, $command:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "sessions",
            params(("id" = Uuid, Path, description = "The session's id"),
                ("If-Match" = Option<String>, Header, description = "The session version the command is based on (its ETag)"),
                ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
            responses((status = 200, body = SessionView, headers(("ETag" = String, description = "The new session version"))),
                (status = "4XX", body = Problem, content_type = "application/problem+json")),
            security(("api_key" = [])))]
        pub(crate) async fn $name(State(state): State<AppState>, principal: Principal, meta: CommandMeta, ApiPath(id): ApiPath<Uuid>) -> Response {
            run_command(&state, &principal, &meta, &[], id, Ok($command)).await
        }
    };
}

command_without_body!(
    /// The patient arrived (front desk).
    check_in, "/v1/sessions/{id}/check-in", SessionCommand::CheckIn
);
command_with_body!(
    /// Records a delivered service (front desk); the code must cover the technique.
    record_service, "/v1/sessions/{id}/services", RecordServiceRequest, service_command
);
command_with_body!(
    /// Records a supervised modality (front desk).
    record_modality, "/v1/sessions/{id}/modalities", RecordModalityRequest,
    |request| Ok(SessionCommand::RecordModality(RecordModality { id: EventId::from(Uuid::now_v7()), code: code("code", &request.code)?, minutes: request.minutes }))
);
command_with_body!(
    /// Attaches diagnoses (front desk).
    attach_diagnoses, "/v1/sessions/{id}/diagnoses", AttachDiagnosesRequest, diagnoses_command
);
command_without_body!(
    /// Completes the visit's record (front desk).
    complete, "/v1/sessions/{id}/complete", SessionCommand::Complete
);
command_with_body!(
    /// Cancels the booking (front desk) and frees the therapist's slot.
    cancel, "/v1/sessions/{id}/cancel", ReasonRequest, |request| Ok(SessionCommand::Cancel { reason: request.reason.clone() })
);
command_without_body!(
    /// Records that the patient did not attend (front desk) and frees the therapist's slot.
    no_show, "/v1/sessions/{id}/no-show", SessionCommand::NoShow
);
command_with_body!(
    /// Reopens a completed record for correction (front desk).
    amend, "/v1/sessions/{id}/amend", ReasonRequest, |request| Ok(SessionCommand::Amend { reason: request.reason.clone() })
);

/// Voids a service or modality recorded by mistake (front desk): it stops counting for minutes and
/// units and never reaches the claim; the original stays on the log. Allowed while the record is
/// open (checked in, or reopened with an amendment).
#[utoipa::path(post, path = "/v1/sessions/{id}/services/{event_id}/void", tag = "sessions", request_body = ReasonRequest,
    params(("id" = Uuid, Path, description = "The session's id"),
        ("event_id" = Uuid, Path, description = "The service's or modality's `event_id`"),
        ("If-Match" = Option<String>, Header, description = "The session version the command is based on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = SessionView, headers(("ETag" = String, description = "The new session version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn void_service(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath((id, event_id)): ApiPath<(Uuid, Uuid)>,
    body: JsonBody<ReasonRequest>,
) -> Response {
    let command = body.parse().map(|request| SessionCommand::VoidService {
        service: EventId::from(event_id),
        reason: request.reason,
    });
    run_command(&state, &principal, &meta, &body.raw, id, command).await
}
