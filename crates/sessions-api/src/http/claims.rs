//! The claim endpoints: billing staff submit a derived claim, record the payer's remittance,
//! resubmit a denied claim (for example with the other code) and write off an unpaid balance; and
//! read a claim with its lines, outcomes and version. Each handler checks the caller's role, turns
//! the request into a domain command, runs it through [`crate::app::claims`] (idempotently, with
//! its `Idempotency-Key`), and renders the claim. Refusals answer 4xx and write nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use claimledger_claims::claim::{Claim, ClaimStatus};
use claimledger_claims::command::{
    AdjustmentInput, ClaimCommand, LineAdjudicationInput, LineInput, RemittanceInput,
};
use claimledger_http_edge::edge::ApiPath;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::claims::{self, ClaimRequest, ClaimState};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, run_idempotent};
use crate::startup::AppState;

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

/// The claim's view; a draft shows its derived lines.
fn view(found: &ClaimState) -> ClaimView {
    let ClaimState {
        id,
        located,
        loaded,
        derived,
    } = found;
    let id = *id;
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

fn answer(found: &ClaimState) -> Result<Answer, ApiError> {
    Ok(Answer {
        status: StatusCode::OK,
        version: Some(found.loaded.version),
        location: None,
        body: serde_json::to_value(view(found))?,
    })
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

fn adjudicate_command(request: AdjudicationRequest) -> ClaimCommand {
    ClaimCommand::Adjudicate(RemittanceInput {
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
    })
}

fn resubmit_command(request: &ResubmitRequest) -> ClaimCommand {
    ClaimCommand::Resubmit {
        reason: request.reason.clone(),
        lines: line_inputs(&request.lines),
    }
}

fn write_off_command(request: WriteOffRequest) -> ClaimCommand {
    ClaimCommand::WriteOff {
        reason: request.reason,
        amount_cents: request.amount_cents,
    }
}

async fn run(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    raw: &[u8],
    id: Uuid,
    parse: impl FnOnce() -> Result<ClaimRequest, ApiError>,
) -> Response {
    if let Err(error) = principal.require_role(WORKERS) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, principal, meta, raw, || async {
        let request = parse()?;
        answer(&claims::execute(state, principal, meta, id, request).await?)
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
    run(&state, &principal, &meta, &[], id, || {
        Ok(ClaimRequest::Submit)
    })
    .await
}

/// Declares a claim command endpoint with a JSON body, turned into a domain command by `$command`.
macro_rules! command_with_body {
    ($(#[$doc:meta])* $name:ident, $path:literal, $request:ty, $command:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "claims", request_body = $request,
            params(("claim_id" = Uuid, Path, description = "The claim's id"),
                ("If-Match" = Option<String>, Header, description = "The claim version the command is based on (its ETag)"),
                ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
            responses((status = 200, body = ClaimView, headers(("ETag" = String, description = "The new claim version"))),
                (status = "4XX", body = Problem, content_type = "application/problem+json")),
            security(("api_key" = [])))]
        pub(crate) async fn $name(State(state): State<AppState>, principal: Principal, meta: CommandMeta, ApiPath(id): ApiPath<Uuid>, body: JsonBody<$request>) -> Response {
            let command: fn($request) -> ClaimCommand = $command;
            run(&state, &principal, &meta, &body.raw, id, || {
                body.parse().map(|request| ClaimRequest::Decided(command(request)))
            })
            .await
        }
    };
}

command_with_body!(
    /// Records the payer's remittance for the claim (billing or admin). Every submitted line is
    /// answered once, and each line balances: charge − Σ adjustments = paid.
    adjudicate, "/v1/claims/{claim_id}/adjudications", AdjudicationRequest, adjudicate_command
);
command_with_body!(
    /// Resubmits a denied claim with new lines, for example the other code (billing or admin).
    resubmit, "/v1/claims/{claim_id}/resubmit", ResubmitRequest, |request| resubmit_command(&request)
);
command_with_body!(
    /// Writes off (part of) the claim's unpaid balance (billing or admin); the claim is then final.
    write_off, "/v1/claims/{claim_id}/write-off", WriteOffRequest, write_off_command
);

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
    answer(&claims::read(&state, &principal, id).await?)
}
