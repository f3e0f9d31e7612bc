//! Reference data, managed over the API: clinics, therapists, payers (admin), patients, coverages
//! and referrals (admin or front desk), and forgetting a patient's PHI (admin).
//!
//! Every create appends one reference event (`ClinicRegistered`, …) as a new chain-wide aggregate
//! (its id is the entity's id, expected version 0) and then projects it into the PostgreSQL table
//! the API validates against ([`crate::projection`]). PHI (a patient's names and date of birth, a
//! coverage's member id) is never on the log: it is written to its own tables before the append
//! and removed again if the append is refused.
//!
//! Creates are idempotent: with an `Idempotency-Key` the new id and the command id are derived from
//! (chain, key), so a retry appends nothing new and answers with the same id. Every lookup is
//! filtered by the key's chain, so another chain's ids answer 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Days, Months, NaiveDate};
use claimledger_billing::validation::{Icd10Code, Npi, TaxId};
use claimledger_events::reference::{
    ClinicRegistered, CoverageRecorded, PatientForgotten, PatientRegistered, PayerRegistered,
    ReferralRecorded, TherapistRegistered,
};
use claimledger_events::{
    AggregateId, AggregateKind, ChainId, ClinicId, Event, PatientId, PayerId,
};
use claimledger_http_edge::edge::ApiPath;
use claimledger_log::AggregateAddress;
use claimledger_sessions::schema::to_epoch_day;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::commit;
use crate::dto::{
    Clinic, ClinicRequest, Coverage, CoverageRequest, Patient, PatientForgottenView,
    PatientRequest, Payer, PayerRequest, ReasonRequest, Referral, ReferralRequest, Therapist,
    TherapistRequest,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, derived_id, run_idempotent};
use crate::projection;
use crate::startup::AppState;
use crate::store::{self, PatientPhi, ReferenceTable};

/// The longest reason accepted, as for the session commands' reasons.
const MAX_REASON_LENGTH: usize = claimledger_sessions::command::MAX_TEXT_LENGTH;

/// The longest free-text name or address line accepted.
const MAX_NAME_LENGTH: usize = 200;

pub(crate) fn created<T: Serialize>(location: String, body: &T) -> Result<Answer, ApiError> {
    Ok(Answer {
        status: StatusCode::CREATED,
        version: None,
        location: Some(location),
        body: serde_json::to_value(body)?,
    })
}

fn new_id(principal: &Principal, meta: &CommandMeta, purpose: &str) -> Uuid {
    meta.idempotency_key
        .as_deref()
        .map_or_else(Uuid::now_v7, |key| {
            derived_id(principal.chain, purpose, key)
        })
}

pub(crate) fn text(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_LENGTH {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The earliest date any field accepts.
pub(crate) const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// How far ahead of today a coverage or referral date may lie, in years.
pub(crate) const MAX_YEARS_AHEAD: u32 = 10;

/// Refuses a date before [`EARLIEST_DATE`] or more than [`MAX_YEARS_AHEAD`] years after `today`:
/// such a date is a typing error, and it would follow every claim that reads it.
fn plausible_date(field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), ApiError> {
    let latest = today
        .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
        .unwrap_or(NaiveDate::MAX);
    if date < EARLIEST_DATE || date > latest {
        return Err(ApiError::invalid(
            field,
            format!("must be between {EARLIEST_DATE} and {latest}, got {date}"),
        ));
    }
    Ok(())
}

/// Refuses a range whose days are not plausible, or whose last day (if it has one) comes before its
/// first; each refusal names its field.
fn plausible_range(
    (first_field, first): (&str, NaiveDate),
    (last_field, last): (&str, Option<NaiveDate>),
    today: NaiveDate,
) -> Result<(), ApiError> {
    plausible_date(first_field, first, today)?;
    if let Some(last) = last {
        plausible_date(last_field, last, today)?;
        if last < first {
            return Err(ApiError::invalid(
                last_field,
                format!("must not be before {first_field}"),
            ));
        }
    }
    Ok(())
}

/// A rules-file payer identifier: 1 to 64 lowercase letters, digits and hyphens.
fn rules_key(field: &str, value: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !valid {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 64 lowercase letters, digits and hyphens, as in the rules files",
        ));
    }
    Ok(value.to_owned())
}

fn state_code(field: &str, value: &str) -> Result<String, ApiError> {
    if value.len() == 2 && value.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Ok(value.to_owned());
    }
    Err(ApiError::invalid(
        field,
        format!("{value:?} is not a two-letter upper-case state code"),
    ))
}

fn npi(field: &str, value: &str) -> Result<String, ApiError> {
    Npi::parse(field, value)
        .map(|npi| npi.as_str().to_owned())
        .map_err(|error| ApiError::invalid(field, error.problem.to_string()))
}

fn reference_address(chain: ChainId, kind: AggregateKind, id: Uuid) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: None,
        kind,
        id: AggregateId::from(id),
    }
}

/// Appends `event` to the reference aggregate `id` of `kind` at `expected_version` (0 = new) and
/// projects it, so the next request sees it. Returns the commit's sequence.
async fn record(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    kind: AggregateKind,
    id: Uuid,
    expected_version: u64,
    event: Event,
) -> Result<u64, ApiError> {
    let address = reference_address(principal.chain, kind, id);
    let now = state.clock.now_micros();
    let commit = commit::build(
        principal,
        meta,
        &address,
        now,
        vec![commit::record(event, now)],
    );
    let appended = state
        .log
        .append(&address, expected_version, &commit)
        .await?;
    let mut connection = state.pool.acquire().await?;
    if appended.duplicate {
        // A retry: project what the log holds (the first attempt's commit), not this copy.
        for recorded in state.log.read(&address).await?.commits {
            projection::apply_commit(&mut connection, recorded.sequence, &recorded.commit).await?;
        }
    } else {
        projection::apply_commit(&mut connection, appended.sequence, &commit).await?;
    }
    Ok(appended.sequence)
}

/// Whether an append failure is definitive (nothing was stored), as opposed to an unknown outcome
/// that a retry with the same key will settle.
fn append_refused(error: &ApiError) -> bool {
    !matches!(error, ApiError::LogUnavailable(_))
}

/// Registers a clinic (admin).
#[utoipa::path(post, path = "/v1/clinics", tag = "reference", request_body = ClinicRequest,
    responses((status = 201, body = Clinic), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_clinic(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<ClinicRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let details = ClinicRequest {
            name: text("name", &request.name)?,
            npi: npi("npi", &request.npi)?,
            tax_id: TaxId::parse("tax_id", &request.tax_id)
                .map(|tax_id| tax_id.as_str().to_owned())
                .map_err(|error| ApiError::invalid("tax_id", error.problem.to_string()))?,
            address_line: text("address_line", &request.address_line)?,
            city: text("city", &request.city)?,
            state: state_code("state", &request.state)?,
            postal_code: text("postal_code", &request.postal_code)?,
            time_zone: request
                .time_zone
                .parse::<chrono_tz::Tz>()
                .map(|zone| zone.name().to_owned())
                .map_err(|_| {
                    ApiError::invalid(
                        "time_zone",
                        format!(
                            "{:?} is not an IANA time zone such as America/New_York",
                            request.time_zone
                        ),
                    )
                })?,
            place_of_service: if request.place_of_service.len() == 2
                && request
                    .place_of_service
                    .bytes()
                    .all(|byte| byte.is_ascii_digit())
            {
                request.place_of_service.clone()
            } else {
                return Err(ApiError::invalid(
                    "place_of_service",
                    "must be a two-digit CMS place-of-service code such as 11",
                ));
            },
        };
        let id = new_id(&principal, &meta, "clinic");
        let event = Event::ClinicRegistered(ClinicRegistered {
            name: details.name.clone(),
            npi: details.npi.clone(),
            tax_id: details.tax_id.clone(),
            address_line: details.address_line.clone(),
            city: details.city.clone(),
            state: details.state.clone(),
            postal_code: details.postal_code.clone(),
            time_zone: details.time_zone.clone(),
            place_of_service: details.place_of_service.clone(),
        });
        record(
            &state,
            &principal,
            &meta,
            AggregateKind::Clinic,
            id,
            0,
            event,
        )
        .await?;
        created(format!("/v1/clinics/{id}"), &Clinic { id, details })
    })
    .await
}

/// Reads a clinic of the caller's chain.
#[utoipa::path(get, path = "/v1/clinics/{id}", tag = "reference", params(("id" = Uuid, Path, description = "The clinic's id")),
    responses((status = 200, body = Clinic), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn get_clinic(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_clinic(ClinicId::from(id))?;
    let row = store::clinic_row(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("id", "clinic"))?;
    let details = ClinicRequest {
        name: row.name,
        npi: row.npi,
        tax_id: row.tax_id,
        address_line: row.address_line,
        city: row.city,
        state: row.state,
        postal_code: row.postal_code,
        time_zone: row.time_zone,
        place_of_service: row.place_of_service,
    };
    Ok(Answer::ok(serde_json::to_value(Clinic { id, details })?))
}

/// Registers a therapist (admin).
#[utoipa::path(post, path = "/v1/therapists", tag = "reference", request_body = TherapistRequest,
    responses((status = 201, body = Therapist), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_therapist(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<TherapistRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let details = TherapistRequest {
            name: text("name", &request.name)?,
            npi: npi("npi", &request.npi)?,
            licence_number: text("licence_number", &request.licence_number)?,
            licence_state: state_code("licence_state", &request.licence_state)?,
        };
        let id = new_id(&principal, &meta, "therapist");
        let event = Event::TherapistRegistered(TherapistRegistered {
            name: details.name.clone(),
            npi: details.npi.clone(),
            licence_number: details.licence_number.clone(),
            licence_state: details.licence_state.clone(),
        });
        record(
            &state,
            &principal,
            &meta,
            AggregateKind::Therapist,
            id,
            0,
            event,
        )
        .await?;
        created(format!("/v1/therapists/{id}"), &Therapist { id, details })
    })
    .await
}

/// Registers a payer (admin).
#[utoipa::path(post, path = "/v1/payers", tag = "reference", request_body = PayerRequest,
    responses((status = 201, body = Payer), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_payer(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<PayerRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = body.parse()?;
        let details = PayerRequest {
            name: text("name", &request.name)?,
            rules_key: rules_key("rules_key", &request.rules_key)?,
        };
        // Registering the same rules key again names the same payer: the id derives from the key,
        // and the payer's aggregate already exists, so nothing new is appended.
        let id = PayerId::from_rules_key(&details.rules_key).as_uuid();
        let address = reference_address(principal.chain, AggregateKind::Payer, id);
        if state.log.version(&address).await? == 0 {
            let event = Event::PayerRegistered(PayerRegistered {
                name: details.name.clone(),
                rules_key: details.rules_key.clone(),
            });
            match record(
                &state,
                &principal,
                &meta,
                AggregateKind::Payer,
                id,
                0,
                event,
            )
            .await
            {
                Ok(_) | Err(ApiError::VersionConflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let details = store::payer_row(&state.pool, principal.chain, id)
            .await?
            .map_or(details, |row| PayerRequest {
                name: row.name,
                rules_key: row.rules_key,
            });
        created(format!("/v1/payers/{id}"), &Payer { id, details })
    })
    .await
}

/// Registers a patient (admin or front desk). The details are PHI: they stay in PostgreSQL and the
/// log records only that the id exists.
#[utoipa::path(post, path = "/v1/patients", tag = "reference", request_body = PatientRequest,
    responses((status = 201, body = Patient), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_patient(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<PatientRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let details = PatientRequest {
            given_name: text("given_name", &request.given_name)?,
            family_name: text("family_name", &request.family_name)?,
            date_of_birth: request.date_of_birth,
        };
        let today = state.clock.now_micros().date_naive();
        // A birth "today" is possible in any time zone east of UTC; tomorrow in UTC is not.
        if details.date_of_birth < EARLIEST_DATE || details.date_of_birth > today + Days::new(1) {
            return Err(ApiError::invalid(
                "date_of_birth",
                format!(
                    "must be between {EARLIEST_DATE} and today, got {}",
                    details.date_of_birth
                ),
            ));
        }
        let id = new_id(&principal, &meta, "patient");
        let chain = principal.chain.as_uuid();
        let phi = PatientPhi {
            patient: id,
            given_name: &details.given_name,
            family_name: &details.family_name,
            date_of_birth: details.date_of_birth,
        };
        store::insert_patient_phi(&state.pool, principal.chain, &phi).await?;
        let event = Event::PatientRegistered(PatientRegistered {});
        if let Err(error) = record(
            &state,
            &principal,
            &meta,
            AggregateKind::Patient,
            id,
            0,
            event,
        )
        .await
        {
            if append_refused(&error) && !patient_on_log(&state, &principal, id).await? {
                let mut connection = state.pool.acquire().await?;
                projection::delete_phi(&mut connection, chain, id).await?;
            }
            return Err(error);
        }
        created(format!("/v1/patients/{id}"), &Patient { id, details })
    })
    .await
}

/// Whether the patient's aggregate is on the log (a refused append must not delete the PHI of a
/// patient a first attempt did register).
async fn patient_on_log(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<bool, ApiError> {
    let address = reference_address(principal.chain, AggregateKind::Patient, id);
    Ok(state.log.version(&address).await? > 0)
}

/// Reads a patient (admin, front desk or billing: the answer holds PHI). A forgotten patient
/// answers 404: only their id remains.
#[utoipa::path(get, path = "/v1/patients/{id}", tag = "reference", params(("id" = Uuid, Path, description = "The patient's id")),
    responses((status = 200, body = Patient), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn get_patient(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_role(&[Role::Admin, Role::FrontDesk, Role::Billing])?;
    let row = store::patient_row(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("id", "patient"))?;
    let (Some(given_name), Some(family_name), Some(date_of_birth), false) = (
        row.given_name,
        row.family_name,
        row.date_of_birth,
        row.forgotten,
    ) else {
        return Err(ApiError::NotFound {
            field: "id".to_owned(),
            reason: "the patient's details were forgotten; only their id remains".to_owned(),
        });
    };
    Ok(Answer::ok(serde_json::to_value(Patient {
        id,
        details: PatientRequest {
            given_name,
            family_name,
            date_of_birth,
        },
    })?))
}

/// Forgets a patient's PHI (admin): appends `PatientForgotten` and deletes their names, date of
/// birth and coverages' member ids. The patient stays, pseudonymous, so sessions and claims still
/// add up. Forgetting a forgotten patient changes nothing.
#[utoipa::path(delete, path = "/v1/patients/{id}/phi", tag = "reference", request_body = ReasonRequest,
    params(("id" = Uuid, Path, description = "The patient's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the first answer")),
    responses((status = 200, body = PatientForgottenView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn forget_patient(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<ReasonRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = body.parse()?;
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_LENGTH {
            return Err(ApiError::invalid(
                "reason",
                format!("must be 1 to {MAX_REASON_LENGTH} characters"),
            ));
        }
        let chain = principal.chain.as_uuid();
        let forgotten = store::patient_forgotten(&state.pool, principal.chain, id).await?;
        match forgotten {
            None => return Err(ApiError::not_found("id", "patient")),
            Some(true) => {
                let mut connection = state.pool.acquire().await?;
                projection::delete_phi(&mut connection, chain, id).await?;
            }
            Some(false) => {
                let address = reference_address(principal.chain, AggregateKind::Patient, id);
                let version = state.log.version(&address).await?;
                let event = Event::PatientForgotten(PatientForgotten { reason });
                record(
                    &state,
                    &principal,
                    &meta,
                    AggregateKind::Patient,
                    id,
                    version,
                    event,
                )
                .await?;
            }
        }
        Ok(Answer::ok(serde_json::to_value(PatientForgottenView {
            id,
            forgotten: true,
        })?))
    })
    .await
}

/// Adds a patient's coverage by a payer (admin or front desk).
#[utoipa::path(post, path = "/v1/coverages", tag = "reference", request_body = CoverageRequest,
    responses((status = 201, body = Coverage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_coverage(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<CoverageRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        if !store::exists(
            &state.pool,
            ReferenceTable::Patients,
            principal.chain,
            request.patient_id,
        )
        .await?
        {
            return Err(ApiError::not_found("patient_id", "patient"));
        }
        if !store::exists(
            &state.pool,
            ReferenceTable::Payers,
            principal.chain,
            request.payer_id,
        )
        .await?
        {
            return Err(ApiError::not_found("payer_id", "payer"));
        }
        let member_id = text("member_id", &request.member_id)?;
        let today = state.clock.now_micros().date_naive();
        plausible_range(
            ("valid_from", request.valid_from),
            ("valid_to", request.valid_to),
            today,
        )?;
        let details = CoverageRequest {
            member_id,
            ..request.clone()
        };
        let id = new_id(&principal, &meta, "coverage");
        store::insert_coverage_phi(
            &state.pool,
            principal.chain,
            id,
            details.patient_id,
            &details.member_id,
        )
        .await?;
        let event = Event::CoverageRecorded(CoverageRecorded {
            patient: PatientId::from(details.patient_id),
            payer: PayerId::from(details.payer_id),
            valid_from: to_epoch_day(details.valid_from),
            valid_to: details.valid_to.map(to_epoch_day),
        });
        if let Err(error) = record(
            &state,
            &principal,
            &meta,
            AggregateKind::Coverage,
            id,
            0,
            event,
        )
        .await
        {
            let address = reference_address(principal.chain, AggregateKind::Coverage, id);
            if append_refused(&error) && state.log.version(&address).await? == 0 {
                store::delete_coverage_phi(&state.pool, principal.chain, id).await?;
            }
            return Err(error);
        }
        created(format!("/v1/coverages/{id}"), &Coverage { id, details })
    })
    .await
}

/// Records a referral or prescription (admin or front desk).
#[utoipa::path(post, path = "/v1/referrals", tag = "reference", request_body = ReferralRequest,
    responses((status = 201, body = Referral), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_referral(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<ReferralRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return ApiError::from(error).into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        if !store::exists(
            &state.pool,
            ReferenceTable::Patients,
            principal.chain,
            request.patient_id,
        )
        .await?
        {
            return Err(ApiError::not_found("patient_id", "patient"));
        }
        let referring_npi = npi("referring_npi", &request.referring_npi)?;
        if request.diagnoses.is_empty() || request.diagnoses.len() > 12 {
            return Err(ApiError::invalid(
                "diagnoses",
                "a referral names 1 to 12 diagnoses",
            ));
        }
        let mut diagnoses = Vec::with_capacity(request.diagnoses.len());
        for (index, code) in request.diagnoses.iter().enumerate() {
            let field = format!("diagnoses[{index}]");
            let code = Icd10Code::parse(&field, code).map_err(|error| {
                ApiError::invalid(&field, format!("{:?} {}", error.value, error.problem))
            })?;
            diagnoses.push(
                claimledger_events::Icd10Code::new(code.as_str())
                    .map_err(|error| ApiError::invalid(&field, error.to_string()))?,
            );
        }
        let authorised_visits = u16::try_from(request.authorised_visits)
            .ok()
            .filter(|visits| (1..=MAX_AUTHORISED_VISITS).contains(visits))
            .ok_or_else(|| {
                ApiError::invalid(
                    "authorised_visits",
                    format!("must be between 1 and {MAX_AUTHORISED_VISITS}"),
                )
            })?;
        let today = state.clock.now_micros().date_naive();
        plausible_range(
            ("issued_on", request.issued_on),
            ("expires_on", Some(request.expires_on)),
            today,
        )?;
        let details = ReferralRequest {
            referring_npi,
            ..request.clone()
        };
        let id = new_id(&principal, &meta, "referral");
        let event = Event::ReferralRecorded(ReferralRecorded {
            patient: PatientId::from(details.patient_id),
            referring_npi: details.referring_npi.clone(),
            diagnoses,
            authorised_visits,
            issued_on: to_epoch_day(details.issued_on),
            expires_on: to_epoch_day(details.expires_on),
        });
        record(
            &state,
            &principal,
            &meta,
            AggregateKind::Referral,
            id,
            0,
            event,
        )
        .await?;
        created(format!("/v1/referrals/{id}"), &Referral { id, details })
    })
    .await
}

/// The most visits one referral may authorise.
const MAX_AUTHORISED_VISITS: u16 = 365;
