//! `Idempotency-Key`: the first answer to a request is stored per (chain, key) and returned again,
//! unchanged, for every retry; a retry writes nothing new.
//!
//! Two layers make this hold across crashes. This table returns the stored answer. The log's
//! message id for the command is a UUIDv5 of (chain, key), so a crash after the append but before
//! the answer is stored is deduplicated by the log when the client retries, and the retry stores the
//! answer then. Conflicts (409) and server failures are not stored: they are transient, and the
//! client is expected to retry them with the same key.

use std::future::Future;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimledger_events::ChainId;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::{CommandMeta, etag};

/// The header set on an answer replayed from the idempotency store.
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The namespace of the UUIDv5 command ids derived from idempotency keys.
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c0b_54f4_7a34_4d1e_9c3e_0b8e_2f4b_9d11);

/// A successful answer: status, optional ETag version and Location, and a JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The resource version, sent as the ETag.
    pub version: Option<u64>,
    /// The created resource's path.
    pub location: Option<String>,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl Answer {
    /// A 200 with `body`.
    pub(crate) fn ok(body: serde_json::Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            version: None,
            location: None,
            body,
        }
    }
}

/// An answer as stored: what is replayed to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredAnswer {
    status: StatusCode,
    etag: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

impl StoredAnswer {
    fn from_answer(answer: &Answer) -> Result<StoredAnswer, ApiError> {
        Ok(StoredAnswer {
            status: answer.status,
            etag: answer.version.map(etag),
            location: answer.location.clone(),
            body: serde_json::to_vec(&answer.body)?,
        })
    }

    fn from_error(error: &ApiError) -> Result<StoredAnswer, ApiError> {
        Ok(StoredAnswer {
            status: error.status(),
            etag: None,
            location: None,
            body: serde_json::to_vec(&error.problem())?,
        })
    }

    fn into_response(self, replayed: bool) -> Response {
        let content_type = if self.status.is_success() {
            "application/json"
        } else {
            PROBLEM_JSON
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(value) = self.etag.and_then(|etag| HeaderValue::from_str(&etag).ok()) {
            headers.insert(header::ETAG, value);
        }
        if let Some(value) = self
            .location
            .and_then(|location| HeaderValue::from_str(&location).ok())
        {
            headers.insert(header::LOCATION, value);
        }
        if replayed {
            headers.insert(
                HeaderName::from_static(REPLAYED_HEADER),
                HeaderValue::from_static("true"),
            );
        }
        response
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match StoredAnswer::from_answer(&self) {
            Ok(stored) => stored.into_response(false),
            Err(error) => error.into_response(),
        }
    }
}

/// The command id of a request: derived from its idempotency key, so that every retry carries the
/// same id to the log, or random when the client sent no key.
pub(crate) fn command_id(chain: ChainId, idempotency_key: Option<&str>) -> Uuid {
    match idempotency_key {
        Some(key) => derived_id(chain, "command", key),
        None => Uuid::now_v7(),
    }
}

/// A stable id for `purpose` derived from (chain, idempotency key): a retried create gets the same
/// resource id.
pub(crate) fn derived_id(chain: ChainId, purpose: &str, key: &str) -> Uuid {
    let mut name = Vec::with_capacity(16 + purpose.len() + key.len() + 1);
    name.extend_from_slice(chain.as_bytes());
    name.extend_from_slice(purpose.as_bytes());
    name.push(0);
    name.extend_from_slice(key.as_bytes());
    Uuid::new_v5(&COMMAND_ID_NAMESPACE, &name)
}

/// The hash that tells a retry from a different request reusing the key.
fn request_hash(meta: &CommandMeta, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(meta.method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(meta.path.as_bytes());
    hasher.update(b"\n");
    hasher.update(
        meta.if_match
            .map(|version| version.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// Runs `work` at most once per (chain, idempotency key) as far as the client can tell: a retry
/// with the same key and request gets the first answer back; the same key with another request is
/// refused. Without a key, `work` simply runs.
pub(crate) async fn run_idempotent<F, Fut>(
    pool: &PgPool,
    principal: &Principal,
    meta: &CommandMeta,
    body: &[u8],
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Answer, ApiError>>,
{
    let Some(key) = meta.idempotency_key.as_deref() else {
        return work().await.into_response();
    };
    let hash = request_hash(meta, body);
    match find(pool, principal.chain, key).await {
        Ok(Some((stored_hash, stored))) if stored_hash == hash => {
            return stored.into_response(true);
        }
        Ok(Some(_)) => return ApiError::IdempotencyKeyReused.into_response(),
        Ok(None) => {}
        Err(error) => return ApiError::from(error).into_response(),
    }
    let result = work().await;
    let to_store = match &result {
        Ok(answer) => Some(StoredAnswer::from_answer(answer)),
        Err(error) if error.is_final() => Some(StoredAnswer::from_error(error)),
        Err(_) => None,
    };
    if let Some(Ok(stored)) = to_store {
        match insert(pool, principal.chain, key, &hash, &stored).await {
            Ok(true) => {}
            // A concurrent request with the same key stored its answer first; both requests carried
            // the same command id to the log, so answering with the stored one is consistent.
            Ok(false) => {
                if let Ok(Some((stored_hash, winner))) = find(pool, principal.chain, key).await {
                    if stored_hash == hash {
                        return winner.into_response(true);
                    }
                    return ApiError::IdempotencyKeyReused.into_response();
                }
            }
            // The answer still goes out: a retry re-runs the command, which the log deduplicates.
            Err(error) => {
                tracing::warn!(error.message = %error, "could not store an idempotent answer")
            }
        }
    }
    match result {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(),
    }
}

/// A stored answer as its row.
#[derive(Debug, sqlx::FromRow)]
struct IdempotencyRow {
    request_sha256: Vec<u8>,
    response_status: i16,
    response_etag: Option<String>,
    response_location: Option<String>,
    response_body: Vec<u8>,
}

async fn find(
    pool: &PgPool,
    chain: ChainId,
    key: &str,
) -> Result<Option<(Vec<u8>, StoredAnswer)>, sqlx::Error> {
    let row: Option<IdempotencyRow> = sqlx::query_as(
        "SELECT request_sha256, response_status, response_etag, response_location, response_body \
         FROM idempotency_records WHERE chain_id = $1 AND idempotency_key = $2",
    )
    .bind(chain.as_uuid())
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| {
        let status = u16::try_from(row.response_status)
            .ok()
            .and_then(|status| StatusCode::from_u16(status).ok());
        let answer = StoredAnswer {
            status: status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            etag: row.response_etag,
            location: row.response_location,
            body: row.response_body,
        };
        (row.request_sha256, answer)
    }))
}

async fn insert(
    pool: &PgPool,
    chain: ChainId,
    key: &str,
    hash: &[u8],
    answer: &StoredAnswer,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO idempotency_records \
         (chain_id, idempotency_key, request_sha256, response_status, response_etag, response_location, response_body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain_id, idempotency_key) DO NOTHING",
    )
    .bind(chain.as_uuid())
    .bind(key)
    .bind(hash)
    .bind(i16::try_from(answer.status.as_u16()).unwrap_or(i16::MAX))
    .bind(answer.etag.as_deref())
    .bind(answer.location.as_deref())
    .bind(answer.body.as_slice())
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_same_chain_and_key_when_derived_then_the_command_id_is_stable_and_chain_specific()
    {
        let chain = ChainId::from_bytes([1; 16]);
        let other = ChainId::from_bytes([2; 16]);
        assert_eq!(command_id(chain, Some("k")), command_id(chain, Some("k")));
        assert_ne!(command_id(chain, Some("k")), command_id(other, Some("k")));
        assert_ne!(
            derived_id(chain, "command", "k"),
            derived_id(chain, "session", "k")
        );
        assert_ne!(command_id(chain, None), command_id(chain, None));
    }
}
