//! The API's one error type and its application/problem+json rendering (RFC 9457).
//!
//! Every refusal names the field it concerns and the reason. The HTTP status of each variant is
//! decided in one `match` ([`ApiError::status`]). Server-side failures answer with a generic body;
//! their cause is attached to the response for the logging middleware, which logs it once.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimledger_http_edge::keys::{AuthError, Forbidden};
pub(crate) use claimledger_http_edge::problem::{
    PROBLEM_JSON, Problem, RETRY_AFTER_SECONDS, is_outage,
};
use claimledger_log::LogError;
use claimledger_sessions::error::SessionError;
use claimledger_sessions::schema::SchemaError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no API key, or one that is unknown or revoked.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthenticated,
    /// 403: the key's role or clinic scope does not allow this.
    #[error("{field}: {reason}")]
    Forbidden {
        /// What the refusal concerns (`role` or `clinic_id`).
        field: String,
        /// Why.
        reason: String,
    },
    /// 404: nothing with this id exists in the key's chain (another chain's ids answer the same).
    #[error("{field}: {reason}")]
    NotFound {
        /// The id's field or path parameter.
        field: String,
        /// Why.
        reason: String,
    },
    /// 400: the body is not JSON of the expected shape, or a header is malformed.
    #[error("{field}: {reason}")]
    BadRequest {
        /// The offending field path (`body` when the JSON itself is broken).
        field: String,
        /// Why.
        reason: String,
    },
    /// 408: the request took longer than the configured timeout.
    #[error("the request took longer than {milliseconds} ms")]
    Timeout {
        /// The configured timeout.
        milliseconds: u128,
    },
    /// 413: the body is larger than the configured limit.
    #[error("body: the request body exceeds {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit_bytes: usize,
    },
    /// 415: a body that is not `application/json`.
    #[error("Content-Type: the body must be application/json")]
    UnsupportedMediaType,
    /// 422: a well-formed request that a validation rule refuses.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// 409: the command does not fit the resource's current state.
    #[error("{field}: {reason}")]
    StateConflict {
        /// What conflicts (`status`, `therapist_id`, ...).
        field: String,
        /// Why.
        reason: String,
    },
    /// 409: `If-Match` (or the version just read) is not the resource's current version.
    #[error("If-Match: the {resource} is at version {actual_version}, not {expected_version}")]
    VersionConflict {
        /// What moved on: `session`, `claim`, `patient` …
        resource: String,
        /// The version the client based its command on.
        expected_version: u64,
        /// The current version.
        actual_version: u64,
    },
    /// 422: the `Idempotency-Key` was already used for a different request.
    #[error("Idempotency-Key: the key was already used for a different request")]
    IdempotencyKeyReused,
    /// 503: the event log did not answer; the outcome of a write may be unknown, so retry with the
    /// same `Idempotency-Key`.
    #[error("the event log is unavailable")]
    LogUnavailable(#[source] LogError),
    /// 500: the event log refused or returned something unexpected.
    #[error("the event log failed")]
    Log(#[source] LogError),
    /// 500: a stored event could not be read back as a session event.
    #[error("a stored event could not be read")]
    Schema(#[from] SchemaError),
    /// 500: the database failed.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    /// 500: a response could not be serialised.
    #[error("a response could not be serialised")]
    Serialisation(#[from] serde_json::Error),
}

/// The cause of a 5xx answer, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub(crate) struct ServerFailure {
    /// `Display` of the error.
    pub message: String,
    /// `Debug` of the error, with its source chain.
    pub cause_chain: String,
}

impl ApiError {
    /// A 422 for `field`.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// A 404 for `field`.
    pub fn not_found(field: &str, what: &str) -> ApiError {
        ApiError::NotFound {
            field: field.to_owned(),
            reason: format!("no {what} with this id exists in your chain"),
        }
    }

    /// Whether the command was refused on the state it was decided on (a conflict, an invalid or
    /// missing reference): decided again on a newer state, it may pass.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            ApiError::VersionConflict { .. }
                | ApiError::StateConflict { .. }
                | ApiError::Invalid { .. }
                | ApiError::NotFound { .. }
        )
    }

    /// A stored value that cannot be read back: a defect, answered as a server failure.
    pub(crate) fn corrupt(what: impl Into<String>) -> ApiError {
        ApiError::Database(sqlx::Error::Decode(what.into().into()))
    }

    /// A 400 for `field`.
    pub fn bad_request(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status of each variant.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::StateConflict { .. } | ApiError::VersionConflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::LogUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(error) if is_outage(error) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Log(_)
            | ApiError::Schema(_)
            | ApiError::Database(_)
            | ApiError::Serialisation(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether this answer may be stored as the first answer to an idempotent request: a refusal
    /// that depends only on the request. Conflicts and server failures are transient, so a retry
    /// with the same key runs again.
    pub fn is_final(&self) -> bool {
        let status = self.status();
        status.is_client_error()
            && status != StatusCode::CONFLICT
            && status != StatusCode::UNAUTHORIZED
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, title) = match self {
            ApiError::Unauthenticated => ("unauthenticated", "Authentication required"),
            ApiError::Forbidden { .. } => ("forbidden", "Not allowed for this API key"),
            ApiError::NotFound { .. } => ("not-found", "Not found"),
            ApiError::BadRequest { .. } => ("malformed-request", "Malformed request"),
            ApiError::Timeout { .. } => ("timeout", "Request timed out"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Invalid { .. } => ("invalid-field", "Invalid field"),
            ApiError::StateConflict { .. } => {
                ("state-conflict", "Conflicts with the current state")
            }
            ApiError::VersionConflict { .. } => ("version-conflict", "Version conflict"),
            ApiError::IdempotencyKeyReused => ("idempotency-key-reused", "Idempotency key reused"),
            ApiError::LogUnavailable(_) => ("log-unavailable", "Event log unavailable"),
            ApiError::Database(error) if is_outage(error) => {
                ("database-unavailable", "Database unavailable")
            }
            ApiError::Log(_)
            | ApiError::Schema(_)
            | ApiError::Database(_)
            | ApiError::Serialisation(_) => ("internal", "Internal error"),
        };
        let (field, reason): (Option<&str>, Option<String>) = match self {
            ApiError::Forbidden { field, reason }
            | ApiError::NotFound { field, reason }
            | ApiError::BadRequest { field, reason }
            | ApiError::Invalid { field, reason }
            | ApiError::StateConflict { field, reason } => (Some(field), Some(reason.clone())),
            ApiError::PayloadTooLarge { limit_bytes } => {
                (Some("body"), Some(format!("exceeds {limit_bytes} bytes")))
            }
            ApiError::UnsupportedMediaType => (
                Some("Content-Type"),
                Some("must be application/json".to_owned()),
            ),
            ApiError::VersionConflict {
                resource,
                actual_version,
                ..
            } => (
                Some("If-Match"),
                Some(format!("the {resource} is now at version {actual_version}")),
            ),
            ApiError::IdempotencyKeyReused => (
                Some("Idempotency-Key"),
                Some("already used for a different request".to_owned()),
            ),
            _ => (None, None),
        };
        // Server-side failures say nothing about their cause: it is logged, not sent.
        let detail = if status.is_server_error() {
            title.to_owned()
        } else {
            self.to_string()
        };
        Problem {
            problem_type: format!("urn:claimledger:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            field: field.map(str::to_owned),
            reason,
            current_version: match self {
                ApiError::VersionConflict { actual_version, .. } => Some(*actual_version),
                _ => None,
            },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::Database(error) => ApiError::Database(error),
        }
    }
}

impl From<Forbidden> for ApiError {
    fn from(refusal: Forbidden) -> ApiError {
        ApiError::Forbidden {
            field: refusal.field,
            reason: refusal.reason,
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> ApiError {
        let field = error.field().to_owned();
        let reason = error.reason();
        match error {
            SessionError::NotScheduled => ApiError::NotFound { field, reason },
            refusal if refusal.is_state_conflict() => ApiError::StateConflict { field, reason },
            _ => ApiError::Invalid { field, reason },
        }
    }
}

impl From<LogError> for ApiError {
    fn from(error: LogError) -> ApiError {
        match error {
            LogError::Conflict {
                subject,
                expected_version,
                actual_version,
            } => ApiError::VersionConflict {
                // The subject ends with the aggregate's kind and id: `….session.<id>`.
                resource: subject
                    .rsplit('.')
                    .nth(1)
                    .unwrap_or("resource")
                    .replace('-', " "),
                expected_version,
                actual_version,
            },
            LogError::Nats { .. } => ApiError::LogUnavailable(error),
            other => ApiError::Log(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem().escaped();
        let mut response = (self.status(), Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            // An outage is expected to pass: a client that honours Retry-After (and retries with
            // the same Idempotency-Key) gets its answer once the database or the log is back.
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        if matches!(self, ApiError::Unauthenticated) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status().is_server_error() {
            response.extensions_mut().insert(Arc::new(ServerFailure {
                message: self.to_string(),
                cause_chain: format!("{self:?}"),
            }));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_unreachable_log_or_database_when_rendered_then_it_is_a_503_with_retry_after() {
        let log = ApiError::from(LogError::Nats {
            operation: "publishing a commit",
            source: "no responders".into(),
        });
        let database = ApiError::Database(sqlx::Error::PoolTimedOut);
        for error in [log, database] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn given_a_database_error_of_the_request_when_rendered_then_it_stays_a_500() {
        let error = ApiError::Database(sqlx::Error::RowNotFound);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !error
                .into_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
    }
}
