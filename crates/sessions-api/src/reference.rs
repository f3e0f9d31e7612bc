//! Reference data and keys, managed over the API: clinics, therapists, payers (admin), patients,
//! coverages and referrals (admin or front desk), and API keys (admin).
//!
//! Creates are idempotent: with an `Idempotency-Key` the new row's id is derived from (chain, key),
//! so a retry finds the row it created instead of creating a second one. Every lookup is filtered by
//! the key's chain, so another chain's ids answer 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use claimledger_billing::validation::{Icd10Code, Npi, TaxId};
use claimledger_events::{ChainId, ClinicId, PayerId};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::auth::{Principal, Role, create_api_key};
use crate::dto::{
    ApiKeyCreated, Clinic, ClinicRequest, Coverage, CoverageRequest, CreateApiKeyRequest, Patient,
    PatientRequest, Payer, PayerRequest, Referral, ReferralRequest, Therapist, TherapistRequest,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, derived_id, run_idempotent};
use crate::startup::AppState;

/// The longest free-text name or address line accepted.
const MAX_NAME_LENGTH: usize = 200;

fn created<T: Serialize>(location: String, body: &T) -> Result<Answer, ApiError> {
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

fn text(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_LENGTH {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(trimmed.to_owned())
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

/// Refuses unless the key's scope includes every clinic it asks for.
fn require_scope(principal: &Principal, clinics: &Option<Vec<Uuid>>) -> Result<(), ApiError> {
    for clinic in clinics.iter().flatten() {
        principal.require_clinic(ClinicId::from(*clinic))?;
    }
    Ok(())
}

/// Creates an API key for the caller's chain (admin). The key is in this answer only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreated), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<CreateApiKeyRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return error.into_response();
    }
    // Keys are never created twice by a retry: the answer holding the secret is what is replayed.
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let label = text("label", &request.label)?;
        require_scope(&principal, &request.clinic_ids)?;
        if let Some(clinics) = &request.clinic_ids {
            for (index, clinic) in clinics.iter().enumerate() {
                if !exists(&state.pool, "clinics", principal.chain, *clinic).await? {
                    return Err(ApiError::not_found(
                        &format!("clinic_ids[{index}]"),
                        "clinic",
                    ));
                }
            }
        }
        let clinics: Option<Vec<ClinicId>> = request
            .clinic_ids
            .as_ref()
            .map(|ids| ids.iter().copied().map(ClinicId::from).collect());
        let key = create_api_key(
            &state.pool,
            principal.chain,
            request.role,
            clinics.as_deref(),
            &label,
        )
        .await?;
        let body = ApiKeyCreated {
            id: key.id,
            key: key.secret,
            role: request.role,
            clinic_ids: request.clinic_ids.clone(),
        };
        created(format!("/v1/api-keys/{}", body.id), &body)
    })
    .await
}

/// Registers a clinic (admin).
#[utoipa::path(post, path = "/v1/clinics", tag = "reference", request_body = ClinicRequest,
    responses((status = 201, body = Clinic), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_clinic(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<ClinicRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return error.into_response();
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
                .map_err(|_| ApiError::invalid("time_zone", format!("{:?} is not an IANA time zone such as America/New_York", request.time_zone)))?,
            place_of_service: if request.place_of_service.len() == 2 && request.place_of_service.bytes().all(|byte| byte.is_ascii_digit()) {
                request.place_of_service.clone()
            } else {
                return Err(ApiError::invalid("place_of_service", "must be a two-digit CMS place-of-service code such as 11"));
            },
        };
        let id = new_id(&principal, &meta, "clinic");
        sqlx::query(
            "INSERT INTO clinics (id, chain_id, name, npi, tax_id, address_line, city, state, postal_code, time_zone, place_of_service) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(&details.name)
        .bind(&details.npi)
        .bind(&details.tax_id)
        .bind(&details.address_line)
        .bind(&details.city)
        .bind(&details.state)
        .bind(&details.postal_code)
        .bind(&details.time_zone)
        .bind(&details.place_of_service)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/clinics/{id}"), &Clinic { id, details })
    })
    .await
}

/// Reads a clinic of the caller's chain.
#[utoipa::path(get, path = "/v1/clinics/{id}", tag = "reference", params(("id" = Uuid, Path, description = "The clinic's id")),
    responses((status = 200, body = Clinic), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn get_clinic(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> Result<Answer, ApiError> {
    let details: Option<ClinicRequest> = sqlx::query_as(
        "SELECT name, npi, tax_id, address_line, city, state, postal_code, time_zone, place_of_service \
         FROM clinics WHERE chain_id = $1 AND id = $2",
    )
    .bind(principal.chain.as_uuid())
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let details = details.ok_or_else(|| ApiError::not_found("id", "clinic"))?;
    Ok(Answer::ok(serde_json::to_value(Clinic { id, details })?))
}

/// Registers a therapist (admin).
#[utoipa::path(post, path = "/v1/therapists", tag = "reference", request_body = TherapistRequest,
    responses((status = 201, body = Therapist), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_therapist(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<TherapistRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return error.into_response();
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
        sqlx::query(
            "INSERT INTO therapists (id, chain_id, name, npi, licence_number, licence_state) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(&details.name)
        .bind(&details.npi)
        .bind(&details.licence_number)
        .bind(&details.licence_state)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/therapists/{id}"), &Therapist { id, details })
    })
    .await
}

/// Registers a payer (admin).
#[utoipa::path(post, path = "/v1/payers", tag = "reference", request_body = PayerRequest,
    responses((status = 201, body = Payer), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_payer(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<PayerRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return error.into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = body.parse()?;
        let details = PayerRequest {
            name: text("name", &request.name)?,
            rules_key: rules_key("rules_key", &request.rules_key)?,
        };
        // Registering the same rules key again names the same payer: the id derives from the key.
        let id = PayerId::from_rules_key(&details.rules_key).as_uuid();
        sqlx::query(
            "INSERT INTO payers (id, chain_id, name, rules_key) VALUES ($1, $2, $3, $4)
             ON CONFLICT (chain_id, id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(&details.name)
        .bind(&details.rules_key)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/payers/{id}"), &Payer { id, details })
    })
    .await
}

/// Registers a patient (admin or front desk). The details are PHI and stay in PostgreSQL.
#[utoipa::path(post, path = "/v1/patients", tag = "reference", request_body = PatientRequest,
    responses((status = 201, body = Patient), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_patient(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<PatientRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return error.into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let details = PatientRequest {
            given_name: text("given_name", &request.given_name)?,
            family_name: text("family_name", &request.family_name)?,
            date_of_birth: request.date_of_birth,
        };
        if details.date_of_birth < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err(ApiError::invalid("date_of_birth", "must be on or after 1900-01-01"));
        }
        let id = new_id(&principal, &meta, "patient");
        sqlx::query(
            "INSERT INTO patients (id, chain_id, given_name, family_name, date_of_birth) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(&details.given_name)
        .bind(&details.family_name)
        .bind(details.date_of_birth)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/patients/{id}"), &Patient { id, details })
    })
    .await
}

/// Reads a patient (admin, front desk or billing: the answer holds PHI).
#[utoipa::path(get, path = "/v1/patients/{id}", tag = "reference", params(("id" = Uuid, Path, description = "The patient's id")),
    responses((status = 200, body = Patient), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn get_patient(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_role(&[Role::Admin, Role::FrontDesk, Role::Billing])?;
    let row: Option<(String, String, NaiveDate)> =
        sqlx::query_as("SELECT given_name, family_name, date_of_birth FROM patients WHERE chain_id = $1 AND id = $2")
            .bind(principal.chain.as_uuid())
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    let (given_name, family_name, date_of_birth) =
        row.ok_or_else(|| ApiError::not_found("id", "patient"))?;
    Ok(Answer::ok(serde_json::to_value(Patient {
        id,
        details: PatientRequest {
            given_name,
            family_name,
            date_of_birth,
        },
    })?))
}

/// Adds a patient's coverage by a payer (admin or front desk).
#[utoipa::path(post, path = "/v1/coverages", tag = "reference", request_body = CoverageRequest,
    responses((status = 201, body = Coverage), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_coverage(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<CoverageRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return error.into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        if !exists(&state.pool, "patients", principal.chain, request.patient_id).await? {
            return Err(ApiError::not_found("patient_id", "patient"));
        }
        if !exists(&state.pool, "payers", principal.chain, request.payer_id).await? {
            return Err(ApiError::not_found("payer_id", "payer"));
        }
        let member_id = text("member_id", &request.member_id)?;
        if request.valid_to.is_some_and(|last_day| last_day < request.valid_from) {
            return Err(ApiError::invalid("valid_to", "must not be before valid_from"));
        }
        let details = CoverageRequest { member_id, ..request.clone() };
        let id = new_id(&principal, &meta, "coverage");
        sqlx::query(
            "INSERT INTO coverages (id, chain_id, patient_id, payer_id, member_id, valid_from, valid_to) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(details.patient_id)
        .bind(details.payer_id)
        .bind(&details.member_id)
        .bind(details.valid_from)
        .bind(details.valid_to)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/coverages/{id}"), &Coverage { id, details })
    })
    .await
}

/// Records a referral or prescription (admin or front desk).
#[utoipa::path(post, path = "/v1/referrals", tag = "reference", request_body = ReferralRequest,
    responses((status = 201, body = Referral), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_referral(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<ReferralRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin, Role::FrontDesk]) {
        return error.into_response();
    }
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        if !exists(&state.pool, "patients", principal.chain, request.patient_id).await? {
            return Err(ApiError::not_found("patient_id", "patient"));
        }
        let referring_npi = npi("referring_npi", &request.referring_npi)?;
        if request.diagnoses.is_empty() || request.diagnoses.len() > 12 {
            return Err(ApiError::invalid("diagnoses", "a referral names 1 to 12 diagnoses"));
        }
        for (index, code) in request.diagnoses.iter().enumerate() {
            let field = format!("diagnoses[{index}]");
            Icd10Code::parse(&field, code).map_err(|error| ApiError::invalid(&field, format!("{:?} {}", error.value, error.problem)))?;
        }
        if request.authorised_visits == 0 || request.authorised_visits > 365 {
            return Err(ApiError::invalid("authorised_visits", "must be between 1 and 365"));
        }
        if request.expires_on < request.issued_on {
            return Err(ApiError::invalid("expires_on", "must not be before issued_on"));
        }
        let details = ReferralRequest { referring_npi, ..request.clone() };
        let id = new_id(&principal, &meta, "referral");
        sqlx::query(
            "INSERT INTO referrals (id, chain_id, patient_id, referring_npi, diagnoses, authorised_visits, issued_on, expires_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(principal.chain.as_uuid())
        .bind(details.patient_id)
        .bind(&details.referring_npi)
        .bind(&details.diagnoses)
        .bind(i32::try_from(details.authorised_visits).unwrap_or(i32::MAX))
        .bind(details.issued_on)
        .bind(details.expires_on)
        .execute(&state.pool)
        .await?;
        created(format!("/v1/referrals/{id}"), &Referral { id, details })
    })
    .await
}

/// Whether `table` holds `id` in `chain`. `table` is one of this module's constant names.
pub(crate) async fn exists<'e>(
    executor: impl PgExecutor<'e>,
    table: &'static str,
    chain: ChainId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let query = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE chain_id = $1 AND id = $2)");
    sqlx::query_scalar(&query)
        .bind(chain.as_uuid())
        .bind(id)
        .fetch_one(executor)
        .await
}
