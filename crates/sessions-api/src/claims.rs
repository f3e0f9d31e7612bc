//! The claim endpoints: billing staff submit a derived claim, record the payer's remittance,
//! resubmit a denied claim (for example with the other code) and write off an unpaid balance; and
//! read a claim with its lines, outcomes and version.
//!
//! A claim is found by its log id (`ClaimId::for_session_and_payer`) through the projector's
//! `read_models.claim_ids` and `read_models.claims`, filtered by the key's chain, so a claim
//! exists for the API once the projector has derived it. Commands run like the session commands:
//! read the claim's commits from the log (or take the cached state when it is at the log's current
//! version, see [`ClaimCache`]), decide with the pure `claimledger-claims` domain, and append the
//! new events in one commit with the version just read (or `If-Match`) as the expected version.
//! `Idempotency-Key` works through the same store and command ids as the session endpoints.
//! Refusals answer 4xx and write nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_claims::claim::{Claim, ClaimStatus};
use claimledger_claims::command::{
    AdjustmentInput, ClaimCommand, DecisionContext, LineAdjudicationInput, LineInput,
    RemittanceInput,
};
use claimledger_claims::error::ClaimError;
use claimledger_claims::event::ClaimEvent;
use claimledger_claims::schema::{from_log_event, to_log_event};
use claimledger_events::{AggregateKind, ChainId, ClaimId, ClinicId, Commit, EventRecord};
use claimledger_http_edge::edge::ApiPath;
use claimledger_log::AggregateAddress;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::aggregate::{self, Aggregate, Loaded, Precondition, StateCache};
use crate::auth::{Principal, Role};
use crate::commit;
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, run_idempotent};
use crate::startup::AppState;
use crate::store;

/// The roles that work claims.
const WORKERS: &[Role] = &[Role::Billing, Role::Admin];

/// A claim line as a resubmission states it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimLineRequest {
    /// The procedure code, e.g. `97124`.
    pub code: String,
    /// Up to four modifiers, e.g. `["GP"]`.
    #[serde(default)]
    pub modifiers: Vec<String>,
    /// Units billed (at least 1).
    #[schema(minimum = 1, maximum = 65535)]
    pub units: u16,
    /// The line charge in cents.
    pub charge_cents: i64,
}

/// One adjustment of a remittance line (an X12 835 CAS triplet).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustmentRequest {
    /// The group code: CO, PR, OA, PI or CR.
    #[schema(example = "CO")]
    pub group: String,
    /// The claim adjustment reason code (CARC), 1 to 3 letters or digits.
    #[schema(example = "45")]
    pub reason_code: String,
    /// The amount in cents; negative for a reversal.
    pub amount_cents: i64,
}

/// The payer's decision on one submitted line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjudicatedLineRequest {
    /// The submitted line this answers.
    #[schema(minimum = 1, maximum = 65535)]
    pub line_number: u16,
    /// Allowed, in cents (at most the line's charge).
    pub allowed_cents: i64,
    /// Paid, in cents: the charge minus every adjustment.
    pub paid_cents: i64,
    /// Patient responsibility, in cents: the sum of the PR adjustments.
    pub patient_responsibility_cents: i64,
    /// Units paid (at most the units billed).
    #[schema(minimum = 0, maximum = 65535)]
    pub paid_units: u16,
    /// Adjustments, in remittance order.
    #[serde(default)]
    pub adjustments: Vec<AdjustmentRequest>,
}

/// Record a remittance: one entry per submitted line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjudicationRequest {
    /// The payer's claim control number.
    pub payer_claim_number: String,
    /// The remittance date (not before the submission, not in the future).
    pub adjudicated_on: NaiveDate,
    /// The line decisions.
    pub lines: Vec<AdjudicatedLineRequest>,
}

/// Resubmit a denied claim with new lines.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResubmitRequest {
    /// Why, e.g. "97140 denied CO-97; billing 97124".
    pub reason: String,
    /// The new lines, numbered 1.. in this order.
    pub lines: Vec<ClaimLineRequest>,
}

/// Write off an unpaid balance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteOffRequest {
    /// Why.
    pub reason: String,
    /// The amount in cents, at most the unpaid balance.
    pub amount_cents: i64,
}

/// An adjustment as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct AdjustmentView {
    /// Group code.
    pub group: String,
    /// CARC.
    pub reason_code: String,
    /// Amount in cents.
    pub amount_cents: i64,
}

/// The latest adjudication of a line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct LineOutcomeView {
    /// Allowed, in cents.
    pub allowed_cents: i64,
    /// Paid, in cents.
    pub paid_cents: i64,
    /// Patient responsibility, in cents.
    pub patient_responsibility_cents: i64,
    /// Units paid.
    pub paid_units: u16,
    /// Nothing was paid for the line.
    pub denied: bool,
    /// Adjustments, in remittance order.
    pub adjustments: Vec<AdjustmentView>,
}

/// A claim line: as submitted (or, for a draft, as derived) and its latest outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ClaimLineView {
    /// 1-based line number.
    pub line_number: u16,
    /// Procedure code.
    pub code: String,
    /// Modifiers.
    pub modifiers: Vec<String>,
    /// Units billed.
    pub units: u16,
    /// Charge in cents.
    pub charge_cents: i64,
    /// The latest adjudication, once a remittance answered the line.
    pub outcome: Option<LineOutcomeView>,
}

/// A claim and where it is in its life.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ClaimView {
    /// The claim's id (`ClaimId::for_session_and_payer`).
    pub id: Uuid,
    /// The claim's version on the log (0 while it is a draft); send it as `If-Match`.
    pub version: u64,
    /// draft, submitted, paid, denied, resubmitted or written_off.
    pub status: String,
    /// The session billed.
    pub session_id: Uuid,
    /// The payer billed.
    pub payer_id: Uuid,
    /// The clinic.
    pub clinic_id: Uuid,
    /// The date of service.
    pub date_of_service: Option<NaiveDate>,
    /// The day the current lines went out.
    pub submitted_on: Option<NaiveDate>,
    /// The latest remittance's date.
    pub adjudicated_on: Option<NaiveDate>,
    /// The latest remittance's payer claim number.
    pub payer_claim_number: Option<String>,
    /// How many times the claim was resubmitted.
    pub resubmissions: u32,
    /// The current lines' total charge.
    pub billed_cents: i64,
    /// Total allowed by the latest remittance.
    pub allowed_cents: i64,
    /// Total paid by the latest remittance.
    pub paid_cents: i64,
    /// Total the patient owes per the latest remittance.
    pub patient_responsibility_cents: i64,
    /// Total written off.
    pub written_off_cents: i64,
    /// What neither the payer paid nor the patient owes, nor was written off.
    pub unpaid_balance_cents: i64,
    /// The lines with their outcomes.
    pub lines: Vec<ClaimLineView>,
}

/// Where a claim lives, from the read models.
#[derive(Debug, Clone)]
struct Located {
    session: Uuid,
    payer: Uuid,
    clinic: ClinicId,
    date_of_service: Option<NaiveDate>,
    derivation_error: Option<String>,
    time_zone: Tz,
}

impl From<ClaimError> for ApiError {
    fn from(error: ClaimError) -> ApiError {
        let field = error.field().to_owned();
        let reason = error.reason();
        if error.is_state_conflict() {
            ApiError::StateConflict { field, reason }
        } else {
            ApiError::Invalid { field, reason }
        }
    }
}

/// A stored value that cannot be read back: a defect, answered as a server failure.
fn corrupt(what: String) -> ApiError {
    ApiError::Database(sqlx::Error::Decode(what.into()))
}

async fn locate(pool: &PgPool, chain: ChainId, claim: Uuid) -> Result<Option<Located>, ApiError> {
    store::claim_row(pool, chain, claim)
        .await?
        .map(|row| {
            Ok(Located {
                session: row.session_id,
                payer: row.payer_id,
                clinic: ClinicId::from(row.clinic_id),
                date_of_service: row.date_of_service,
                derivation_error: row.derivation_error,
                time_zone: row
                    .time_zone
                    .parse::<Tz>()
                    .map_err(|_| corrupt(format!("unknown time zone {:?}", row.time_zone)))?,
            })
        })
        .transpose()
}

fn address_of(chain: ChainId, located: &Located, claim: Uuid) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: Some(located.clinic),
        kind: AggregateKind::Claim,
        id: ClaimId::from(claim).into(),
    }
}

/// Claims as this process last wrote or read them, at their versions.
///
/// Reading a claim from the log replays its commits through a consumer: several round trips, and a
/// consumer the server keeps until it times out. Every command and read first looks up the claim's
/// current version (one cheap last-by-subject lookup) and uses a cached state only when it is at
/// exactly that version, so it decides on the same state a replay would give.
pub(crate) type ClaimCache = StateCache<Claim, ()>;

impl Aggregate for Claim {
    type Event = ClaimEvent;
    type Decoding = ();
    const RESOURCE: &'static str = "claim";

    fn from_events(events: &[ClaimEvent]) -> Claim {
        Claim::from_events(events)
    }

    fn apply(&mut self, event: &ClaimEvent) {
        Claim::apply(self, event);
    }

    fn decode((): (), record: &EventRecord) -> Result<Option<ClaimEvent>, ApiError> {
        from_log_event(&record.event)
            .map_err(|error| corrupt(format!("a stored claim event: {error}")))
    }
}

/// The claim at the log's current version: nothing to read while it is a draft (no commits yet),
/// the cached state when it is at that version, else read from the log (and cached).
async fn load_current(
    state: &AppState,
    address: &AggregateAddress,
    claim: Uuid,
) -> Result<Loaded<Claim>, ApiError> {
    aggregate::load_current(&state.log, &state.claims, address, claim, (), ()).await
}

/// The derived claim's lines, as the projector wrote them.
async fn derived_lines(
    pool: &PgPool,
    chain: ChainId,
    located: &Located,
) -> Result<Vec<LineInput>, ApiError> {
    Ok(
        store::derived_lines(pool, chain, located.session, located.payer)
            .await?
            .into_iter()
            .map(|row| LineInput {
                code: row.code,
                modifiers: row.modifiers,
                units: u16::try_from(row.units).unwrap_or(u16::MAX),
                charge_cents: row.charge_cents,
            })
            .collect(),
    )
}

fn build_commit(
    principal: &Principal,
    meta: &CommandMeta,
    address: &AggregateAddress,
    events: &[ClaimEvent],
    now: DateTime<Utc>,
) -> Commit {
    let records = events
        .iter()
        .map(|event| commit::record(to_log_event(event), now))
        .collect();
    commit::build(principal, meta, address, now, records)
}

fn line_views(claim: &Claim) -> Vec<ClaimLineView> {
    let Some(submission) = claim.submission() else {
        return Vec::new();
    };
    submission
        .lines
        .iter()
        .map(|line| {
            let outcome = claim.adjudication().and_then(|adjudication| {
                adjudication
                    .lines
                    .iter()
                    .find(|outcome| outcome.line_number == line.line_number)
            });
            ClaimLineView {
                line_number: line.line_number,
                code: line.code.as_str().to_owned(),
                modifiers: line
                    .modifiers
                    .iter()
                    .map(|modifier| modifier.as_str().to_owned())
                    .collect(),
                units: line.units,
                charge_cents: line.charge_cents,
                outcome: outcome.map(|outcome| LineOutcomeView {
                    allowed_cents: outcome.allowed_cents,
                    paid_cents: outcome.paid_cents,
                    patient_responsibility_cents: outcome.patient_responsibility_cents,
                    paid_units: outcome.paid_units,
                    denied: outcome.is_denied(),
                    adjustments: outcome
                        .adjustments
                        .iter()
                        .map(|adjustment| AdjustmentView {
                            group: adjustment.group.as_str().to_owned(),
                            reason_code: adjustment.reason_code.clone(),
                            amount_cents: adjustment.amount_cents,
                        })
                        .collect(),
                }),
            }
        })
        .collect()
}

/// The claim's view; a draft shows its derived lines (`derived`).
fn view(id: Uuid, located: &Located, loaded: &Loaded<Claim>, derived: &[LineInput]) -> ClaimView {
    let claim = &loaded.state;
    let adjudication = claim.adjudication();
    let lines = if claim.status() == ClaimStatus::Draft {
        derived
            .iter()
            .enumerate()
            .map(|(index, line)| ClaimLineView {
                line_number: u16::try_from(index + 1).unwrap_or(u16::MAX),
                code: line.code.clone(),
                modifiers: line.modifiers.clone(),
                units: line.units,
                charge_cents: line.charge_cents,
                outcome: None,
            })
            .collect()
    } else {
        line_views(claim)
    };
    ClaimView {
        id,
        version: loaded.version,
        status: claim.status().as_str().to_owned(),
        session_id: located.session,
        payer_id: located.payer,
        clinic_id: located.clinic.as_uuid(),
        date_of_service: claim
            .submission()
            .map(|submission| submission.date_of_service)
            .or(located.date_of_service),
        submitted_on: claim.submission().map(|submission| submission.submitted_on),
        adjudicated_on: adjudication.map(|adjudication| adjudication.adjudicated_on),
        payer_claim_number: adjudication
            .map(|adjudication| adjudication.payer_claim_number.clone()),
        resubmissions: claim.resubmissions(),
        billed_cents: if claim.status() == ClaimStatus::Draft {
            derived.iter().map(|line| line.charge_cents).sum()
        } else {
            claim.billed_cents()
        },
        allowed_cents: adjudication.map_or(0, |adjudication| adjudication.allowed_cents()),
        paid_cents: adjudication.map_or(0, |adjudication| adjudication.paid_cents()),
        patient_responsibility_cents: adjudication.map_or(0, |adjudication| {
            adjudication.patient_responsibility_cents()
        }),
        written_off_cents: claim.written_off_cents(),
        unpaid_balance_cents: claim.unpaid_balance_cents(),
        lines,
    }
}

async fn answer(
    state: &AppState,
    chain: ChainId,
    id: Uuid,
    located: &Located,
    loaded: &Loaded<Claim>,
) -> Result<Answer, ApiError> {
    let derived = if loaded.state.status() == ClaimStatus::Draft {
        derived_lines(&state.pool, chain, located).await?
    } else {
        Vec::new()
    };
    Ok(Answer {
        status: StatusCode::OK,
        version: Some(loaded.version),
        location: None,
        body: serde_json::to_value(view(id, located, loaded, &derived))?,
    })
}

/// What a command needs from the request, turned into a domain command once the claim is found.
enum Request {
    Submit,
    Adjudicate(AdjudicationRequest),
    Resubmit(ResubmitRequest),
    WriteOff(WriteOffRequest),
}

fn line_inputs(lines: &[ClaimLineRequest]) -> Vec<LineInput> {
    lines
        .iter()
        .map(|line| LineInput {
            code: line.code.clone(),
            modifiers: line.modifiers.clone(),
            units: line.units,
            charge_cents: line.charge_cents,
        })
        .collect()
}

async fn command_of(
    state: &AppState,
    chain: ChainId,
    located: &Located,
    request: Request,
) -> Result<ClaimCommand, ApiError> {
    Ok(match request {
        Request::Submit => {
            if let Some(error) = &located.derivation_error {
                return Err(ApiError::invalid(
                    "claim_id",
                    format!(
                        "the claim could not be derived ({error}); it can be submitted once the projector derives it"
                    ),
                ));
            }
            let date_of_service = located.date_of_service.ok_or_else(|| {
                ApiError::invalid("claim_id", "the derived claim has no date of service")
            })?;
            ClaimCommand::Submit {
                session: located.session.into(),
                payer: located.payer.into(),
                date_of_service,
                lines: derived_lines(&state.pool, chain, located).await?,
            }
        }
        Request::Adjudicate(request) => ClaimCommand::Adjudicate(RemittanceInput {
            payer_claim_number: request.payer_claim_number,
            adjudicated_on: request.adjudicated_on,
            lines: request
                .lines
                .into_iter()
                .map(|line| LineAdjudicationInput {
                    line_number: line.line_number,
                    allowed_cents: line.allowed_cents,
                    paid_cents: line.paid_cents,
                    patient_responsibility_cents: line.patient_responsibility_cents,
                    paid_units: line.paid_units,
                    adjustments: line
                        .adjustments
                        .into_iter()
                        .map(|adjustment| AdjustmentInput {
                            group: adjustment.group,
                            reason_code: adjustment.reason_code,
                            amount_cents: adjustment.amount_cents,
                        })
                        .collect(),
                })
                .collect(),
        }),
        Request::Resubmit(request) => ClaimCommand::Resubmit {
            reason: request.reason,
            lines: line_inputs(&request.lines),
        },
        Request::WriteOff(request) => ClaimCommand::WriteOff {
            reason: request.reason,
            amount_cents: request.amount_cents,
        },
    })
}

/// Runs one claim command: find, load, decide, append, answer.
async fn execute(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    request: Request,
) -> Result<Answer, ApiError> {
    let chain = principal.chain;
    let located = locate(&state.pool, chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("claim_id", "claim"))?;
    principal.require_clinic(located.clinic)?;
    let address = address_of(chain, &located, id);
    let loaded = load_current(state, &address, id).await?;
    let this_command = match aggregate::precondition(chain, meta, &loaded)? {
        // Already appended by an earlier attempt whose answer was lost: nothing new is written.
        Precondition::AlreadyAppended => {
            return answer(state, chain, id, &located, &loaded).await;
        }
        Precondition::Proceed(command) => command,
    };
    let command = command_of(state, chain, &located, request).await?;
    let now = state.clock.now_micros();
    let events = loaded
        .state
        .decide(&command, &DecisionContext::at(now, located.time_zone))?;
    let commit = build_commit(principal, meta, &address, &events, now);
    let appended = state.log.append(&address, loaded.version, &commit).await?;
    let next = if appended.duplicate {
        load_current(state, &address, id).await?
    } else {
        let next = loaded.after(&events, this_command, &appended);
        state.claims.put(chain, id, (), &next);
        next
    };
    answer(state, chain, id, &located, &next).await
}

async fn run(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    raw: &[u8],
    id: Uuid,
    parse: impl FnOnce() -> Result<Request, ApiError>,
) -> Response {
    if let Err(error) = principal.require_role(WORKERS) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, principal, meta, raw, || async {
        let request = parse()?;
        execute(state, principal, meta, id, request).await
    })
    .await
}

/// Submits the derived claim to its payer (billing or admin): the derived lines as they are now
/// go out as the submission. A claim that could not be derived answers 422.
#[utoipa::path(post, path = "/v1/claims/{claim_id}/submit", tag = "claims",
    params(("claim_id" = Uuid, Path, description = "The claim's id"),
        ("If-Match" = Option<String>, Header, description = "The claim version the command is based on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The new claim version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> Response {
    run(&state, &principal, &meta, &[], id, || Ok(Request::Submit)).await
}

/// Records the payer's remittance for the claim (billing or admin). Every submitted line is
/// answered once, and each line balances: charge − Σ adjustments = paid.
#[utoipa::path(post, path = "/v1/claims/{claim_id}/adjudications", tag = "claims", request_body = AdjudicationRequest,
    params(("claim_id" = Uuid, Path, description = "The claim's id"),
        ("If-Match" = Option<String>, Header, description = "The claim version the command is based on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The new claim version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn adjudicate(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<AdjudicationRequest>,
) -> Response {
    run(&state, &principal, &meta, &body.raw, id, || {
        body.parse().map(Request::Adjudicate)
    })
    .await
}

/// Resubmits a denied claim with new lines, for example the other code (billing or admin).
#[utoipa::path(post, path = "/v1/claims/{claim_id}/resubmit", tag = "claims", request_body = ResubmitRequest,
    params(("claim_id" = Uuid, Path, description = "The claim's id"),
        ("If-Match" = Option<String>, Header, description = "The claim version the command is based on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The new claim version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn resubmit(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<ResubmitRequest>,
) -> Response {
    run(&state, &principal, &meta, &body.raw, id, || {
        body.parse().map(Request::Resubmit)
    })
    .await
}

/// Writes off (part of) the claim's unpaid balance (billing or admin); the claim is then final.
#[utoipa::path(post, path = "/v1/claims/{claim_id}/write-off", tag = "claims", request_body = WriteOffRequest,
    params(("claim_id" = Uuid, Path, description = "The claim's id"),
        ("If-Match" = Option<String>, Header, description = "The claim version the command is based on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The new claim version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn write_off(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<WriteOffRequest>,
) -> Response {
    run(&state, &principal, &meta, &body.raw, id, || {
        body.parse().map(Request::WriteOff)
    })
    .await
}

/// Reads a claim: status, lines with their outcomes, version (billing or admin).
#[utoipa::path(get, path = "/v1/claims/{claim_id}", tag = "claims",
    params(("claim_id" = Uuid, Path, description = "The claim's id")),
    responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The claim version"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn get_claim(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_role(WORKERS)?;
    let located = locate(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("claim_id", "claim"))?;
    principal.require_clinic(located.clinic)?;
    let loaded = load_current(&state, &address_of(principal.chain, &located, id), id).await?;
    answer(&state, principal.chain, id, &located, &loaded).await
}
