//! API keys, without HTTP: a key never reaches further than the key that manages it, so a
//! clinic-limited admin creates, lists and revokes only keys within its own clinics.

use chrono::{DateTime, Utc};
use claimledger_events::ClinicId;
use uuid::Uuid;

use crate::auth::{
    CreatedKey, KeyRecord, Principal, Role, create_expiring_api_key, list_api_keys, revoke_api_key,
};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{self, ReferenceTable};

/// Creates a key of `role` for the caller's chain, limited to `clinics` (`None`: every clinic),
/// if the caller's own scope covers them and each is a clinic of the chain.
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    role: Role,
    clinics: Option<&[Uuid]>,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedKey, ApiError> {
    // A key never hands out more than it holds: a clinic-limited admin creates keys limited
    // to (some of) its own clinics, never one for every clinic.
    if !principal.covers(clinics) {
        return Err(ApiError::Forbidden {
            field: "clinic_ids".to_owned(),
            reason: "the key is limited to some clinics, so it can only create keys limited \
                     to clinics in its own scope"
                .to_owned(),
        });
    }
    if clinics.is_some_and(<[Uuid]>::is_empty) {
        return Err(ApiError::invalid(
            "clinic_ids",
            "must name at least one clinic; omit it for every clinic",
        ));
    }
    if let Some(expires_at) = expires_at
        && expires_at <= state.clock.now_micros()
    {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    for (index, clinic) in clinics.unwrap_or_default().iter().enumerate() {
        if !store::exists(
            &state.pool,
            ReferenceTable::Clinics,
            principal.chain,
            *clinic,
        )
        .await?
        {
            return Err(ApiError::not_found(
                &format!("clinic_ids[{index}]"),
                "clinic",
            ));
        }
    }
    let clinics: Option<Vec<ClinicId>> =
        clinics.map(|ids| ids.iter().copied().map(ClinicId::from).collect());
    Ok(create_expiring_api_key(
        &state.pool,
        principal.chain,
        role,
        clinics.as_deref(),
        label,
        expires_at,
    )
    .await?)
}

/// The chain's keys within the caller's scope.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<KeyRecord>, ApiError> {
    Ok(list_api_keys(&state.pool, principal.chain)
        .await?
        .into_iter()
        .filter(|record| principal.covers(record.clinic_ids.as_deref()))
        .collect())
}

/// Revokes a key within the caller's scope; a key outside it answers as one that does not exist.
pub(crate) async fn revoke(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<KeyRecord, ApiError> {
    let visible = list(state, principal)
        .await?
        .iter()
        .any(|record| record.id == id);
    if !visible {
        return Err(ApiError::not_found("id", "API key"));
    }
    revoke_api_key(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("id", "API key"))
}
