//! API keys as the sessions API uses them: the keys themselves live in `claimledger_http_edge::keys`
//! (both HTTP services authenticate with them); this module extracts the caller of a request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use claimledger_http_edge::keys::principal_of;
pub use claimledger_http_edge::keys::{
    CreatedKey, Forbidden, KEY_PREFIX, KeyRecord, Principal, Role, authenticate, bootstrap_chain,
    create_api_key, create_chain, create_expiring_api_key, generate_key, hash_key, list_api_keys,
    revoke_api_key,
};

use crate::error::ApiError;
use crate::startup::AppState;

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        Ok(principal_of(&parts.headers, &state.pool).await?)
    }
}
