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
use axum::response::{IntoResponse, Response};
use chrono::Days;
use claimledger_billing::validation::{Icd10Code, TaxId};
use claimledger_events::reference::{
    ClinicRegistered, CoverageRecorded, PayerRegistered, ReferralRecorded, TherapistRegistered,
};
use claimledger_events::{AggregateKind, Event, PatientId, PayerId};
use claimledger_http_edge::edge::ApiPath;
use claimledger_sessions::schema::to_epoch_day;
use uuid::Uuid;

use super::fields::{
    EARLIEST_DATE, MAX_REASON_LENGTH, created, new_id, npi, plausible_range, rules_key, state_code,
    text,
};
use crate::app::reference;
use crate::auth::{Principal, Role};
use crate::dto::{
    Clinic, ClinicRequest, Coverage, CoverageRequest, Patient, PatientForgottenView,
    PatientRequest, Payer, PayerRequest, ReasonRequest, Referral, ReferralRequest, Therapist,
    TherapistRequest,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, run_idempotent};
use crate::startup::AppState;
use crate::store::{PatientPhi, ReferenceTable};

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
        reference::register(&state, &principal, &meta, AggregateKind::Clinic, id, event).await?;
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
    let row = reference::clinic(&state, &principal, id).await?;
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
        reference::register(
            &state,
            &principal,
            &meta,
            AggregateKind::Therapist,
            id,
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
        let event = Event::PayerRegistered(PayerRegistered {
            name: details.name.clone(),
            rules_key: details.rules_key.clone(),
        });
        let details = reference::register_payer(&state, &principal, &meta, id, event)
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
        let phi = PatientPhi {
            patient: id,
            given_name: &details.given_name,
            family_name: &details.family_name,
            date_of_birth: details.date_of_birth,
        };
        reference::register_patient(&state, &principal, &meta, &phi).await?;
        created(format!("/v1/patients/{id}"), &Patient { id, details })
    })
    .await
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
    let row = reference::patient(&state, &principal, id).await?;
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
        reference::forget_patient(&state, &principal, &meta, id, reason).await?;
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
        reference::require_exists(
            &state,
            &principal,
            ReferenceTable::Patients,
            request.patient_id,
            "patient_id",
            "patient",
        )
        .await?;
        reference::require_exists(
            &state,
            &principal,
            ReferenceTable::Payers,
            request.payer_id,
            "payer_id",
            "payer",
        )
        .await?;
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
        let recorded = CoverageRecorded {
            patient: PatientId::from(details.patient_id),
            payer: PayerId::from(details.payer_id),
            valid_from: to_epoch_day(details.valid_from),
            valid_to: details.valid_to.map(to_epoch_day),
        };
        reference::register_coverage(&state, &principal, &meta, id, &details.member_id, recorded)
            .await?;
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
        reference::require_exists(
            &state,
            &principal,
            ReferenceTable::Patients,
            request.patient_id,
            "patient_id",
            "patient",
        )
        .await?;
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
        reference::register(
            &state,
            &principal,
            &meta,
            AggregateKind::Referral,
            id,
            event,
        )
        .await?;
        created(format!("/v1/referrals/{id}"), &Referral { id, details })
    })
    .await
}

/// The most visits one referral may authorise.
const MAX_AUTHORISED_VISITS: u16 = 365;
