//! API keys over the API (admin): create one (its secret is in that answer only), list the chain's
//! keys, revoke one. A key never reaches further than the key that manages it: a clinic-limited
//! admin creates, lists and revokes only keys within its own clinics.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use claimledger_http_edge::edge::ApiPath;
use uuid::Uuid;

use super::fields::{created, text};
use crate::app::keys;
use crate::auth::{KeyRecord, Principal, Role};
use crate::dto::{ApiKeyCreated, ApiKeyList, ApiKeyView, CreateApiKeyRequest};
use crate::error::{ApiError, Problem};
use crate::extract::{CommandMeta, JsonBody};
use crate::idempotency::{Answer, run_idempotent};
use crate::startup::AppState;

/// Creates an API key for the caller's chain (admin). The key is in this answer only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreated), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    meta: CommandMeta,
    body: JsonBody<CreateApiKeyRequest>,
) -> Response {
    if let Err(error) = principal.require_role(&[Role::Admin]) {
        return ApiError::from(error).into_response();
    }
    // Keys are never created twice by a retry: the answer holding the secret is what is replayed.
    run_idempotent(&state.pool, &principal, &meta, &body.raw, || async {
        let request = &body.parse()?;
        let label = text("label", &request.label)?;
        let key = keys::create(
            &state,
            &principal,
            request.role,
            request.clinic_ids.as_deref(),
            &label,
            request.expires_at,
        )
        .await?;
        let body = ApiKeyCreated {
            id: key.id,
            key: key.secret,
            role: request.role,
            clinic_ids: request.clinic_ids.clone(),
            expires_at: request.expires_at,
        };
        created(format!("/v1/api-keys/{}", body.id), &body)
    })
    .await
}

fn key_view(record: KeyRecord, now: chrono::DateTime<chrono::Utc>) -> Result<ApiKeyView, ApiError> {
    let role = Role::parse(&record.role).ok_or_else(|| {
        ApiError::corrupt(format!(
            "api key {} has the unknown role {:?}",
            record.id, record.role
        ))
    })?;
    Ok(ApiKeyView {
        id: record.id,
        role,
        active: record.revoked_at.is_none() && record.expires_at.is_none_or(|at| at > now),
        clinic_ids: record.clinic_ids,
        label: record.label,
        created_at: record.created_at,
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
    })
}

/// Lists the chain's API keys that the caller's clinic scope covers (admin); never their secrets.
#[utoipa::path(get, path = "/v1/api-keys", tag = "keys",
    responses((status = 200, body = ApiKeyList), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Answer, ApiError> {
    principal.require_role(&[Role::Admin])?;
    let now = state.clock.now_micros();
    let keys = keys::list(&state, &principal)
        .await?
        .into_iter()
        .map(|record| key_view(record, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Answer::ok(serde_json::to_value(ApiKeyList { keys })?))
}

/// Revokes an API key of the chain (admin), effective for the very next request. A clinic-limited
/// admin revokes only keys within its own clinics; other keys answer 404, as another chain's do.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "keys", params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 200, body = ApiKeyView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Answer, ApiError> {
    principal.require_role(&[Role::Admin])?;
    let record = keys::revoke(&state, &principal, id).await?;
    Ok(Answer::ok(serde_json::to_value(key_view(
        record,
        state.clock.now_micros(),
    )?)?))
}
