//! The session endpoints: schedule, then one endpoint per lifecycle command, and a read. Each
//! handler checks the caller's role, parses the request into a domain command, runs it through
//! [`crate::app::sessions`] (idempotently, with its `Idempotency-Key`), and renders the session.
//! Refusals answer 4xx and write nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use claimledger_billing::codes::CptCode;
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{ClinicId, EventId, PatientId, PayerId, TherapistId};
use claimledger_http_edge::edge::ApiPath;
use claimledger_sessions::body::{BodyRegion, BodySide};
use claimledger_sessions::command::{
    CoverageId, Payment, RecordModality, RecordService, ReferralId, ScheduleSession, SessionCommand,
};
use claimledger_sessions::error::SessionError;
use uuid::Uuid;

use crate::app::sessions::{self, SessionState};
use crate::auth::{Principal, Role};
use crate::dto::{
    AttachDiagnosesRequest, ModalityView, PaymentDto, ReasonRequest, RecordModalityRequest,
    RecordServiceRequest, ScheduleSessionRequest, ServiceView, SessionView, parse_technique,
    technique_word,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, run_idempotent};
use crate::startup::AppState;

/// The roles that may record visits.
const RECORDERS: &[Role] = &[Role::FrontDesk];
/// The roles that may read sessions.
const READERS: &[Role] = &[Role::FrontDesk, Role::Billing, Role::Admin];

fn view(recorded: &SessionState) -> Result<SessionView, ApiError> {
    let SessionState {
        id,
        loaded,
        located,
    } = recorded;
    let id = *id;
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

fn answer(status: StatusCode, recorded: &SessionState) -> Result<Answer, ApiError> {
    Ok(Answer {
        status,
        version: Some(recorded.loaded.version),
        location: (status == StatusCode::CREATED).then(|| format!("/v1/sessions/{}", recorded.id)),
        body: serde_json::to_value(view(recorded)?)?,
    })
}

/// Refusals about the schedule's references name the request's fields.
fn schedule_error(error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid { field, reason } if field == "coverage_id" => ApiError::Invalid {
            field: "payment.coverage_id".to_owned(),
            reason,
        },
        other => other,
    }
}

/// The schedule request as the domain's command.
fn schedule_command(request: &ScheduleSessionRequest) -> ScheduleSession {
    ScheduleSession {
        clinic: ClinicId::from(request.clinic_id),
        therapist: TherapistId::from(request.therapist_id),
        patient: PatientId::from(request.patient_id),
        payment: match request.payment {
            PaymentDto::SelfPay => Payment::SelfPay,
            PaymentDto::Payer {
                payer_id,
                coverage_id,
            } => Payment::Payer {
                payer: PayerId::from(payer_id),
                coverage: CoverageId(coverage_id),
            },
        },
        referral: request.referral_id.map(ReferralId),
        scheduled_start: request.scheduled_start,
        planned_minutes: request.planned_minutes,
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
        let command = schedule_command(&body.parse()?);
        let scheduled = sessions::schedule(&state, &principal, &meta, &command)
            .await
            .map_err(schedule_error)?;
        answer(StatusCode::CREATED, &scheduled)
    })
    .await
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
        let recorded = sessions::execute(state, principal, meta, session_id, command?).await?;
        answer(StatusCode::OK, &recorded)
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
    answer(
        StatusCode::OK,
        &sessions::read(&state, &principal, id).await?,
    )
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
