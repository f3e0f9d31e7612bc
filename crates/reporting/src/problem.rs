//! The service's one error type, rendered as application/problem+json (the edge's [`Problem`]
//! shape) naming the query parameter concerned. Server failures answer with a generic
//! body; their cause is attached to the response and logged once by the middleware.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimledger_http_edge::keys::AuthError;
pub use claimledger_http_edge::problem::{PROBLEM_JSON, Problem};
use claimledger_http_edge::problem::{RETRY_AFTER_SECONDS, is_outage};

use crate::error::ReportError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no API key, or one that is unknown or revoked.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthenticated,
    /// 403: the key's role or clinic scope does not allow this report.
    #[error("{field}: {reason}")]
    Forbidden {
        /// `role` or `clinic_id`.
        field: String,
        /// Why.
        reason: String,
    },
    /// 400: a query parameter is unknown, repeated or has a bad value.
    #[error("{field}: {reason}")]
    BadParameter {
        /// The query parameter.
        field: String,
        /// Why.
        reason: String,
    },
    /// 404: no such path.
    #[error("path: no such resource")]
    NotFound,
    /// 408: the request took longer than the configured timeout.
    #[error("the request took longer than {milliseconds} ms")]
    Timeout {
        /// The configured timeout.
        milliseconds: u128,
    },
    /// 503 while PostgreSQL is unreachable or restarting (with `Retry-After`), else 500.
    #[error("the database failed")]
    Database(#[source] sqlx::Error),
    /// 500: a response could not be serialised.
    #[error("a response could not be serialised")]
    Serialisation(#[from] serde_json::Error),
}

/// The cause of a 5xx answer, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct ServerFailure {
    /// `Display` of the error.
    pub message: String,
    /// `Debug` of the error, with its source chain.
    pub cause_chain: String,
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> ApiError {
        match error {
            ReportError::Invalid { field, reason } => ApiError::BadParameter {
                field: field.to_owned(),
                reason,
            },
            ReportError::Database(error) => ApiError::Database(error),
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

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        ApiError::Database(error)
    }
}

impl ApiError {
    /// A 400 for the query parameter `field`.
    pub fn bad_parameter(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status of each variant.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Database(error) if is_outage(error) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) | ApiError::Serialisation(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, title) = match self {
            ApiError::Unauthenticated => ("unauthenticated", "Authentication required"),
            ApiError::Forbidden { .. } => ("forbidden", "Not allowed for this API key"),
            ApiError::BadParameter { .. } => ("invalid-parameter", "Invalid query parameter"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::Timeout { .. } => ("timeout", "Request timed out"),
            ApiError::Database(error) if is_outage(error) => {
                ("database-unavailable", "Database unavailable")
            }
            ApiError::Database(_) | ApiError::Serialisation(_) => ("internal", "Internal error"),
        };
        let (field, reason) = match self {
            ApiError::Forbidden { field, reason } | ApiError::BadParameter { field, reason } => {
                (Some(field.clone()), Some(reason.clone()))
            }
            ApiError::NotFound => (Some("path".to_owned()), Some("no such resource".to_owned())),
            _ => (None, None),
        };
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
            field,
            reason,
            current_version: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.problem().escaped())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
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
