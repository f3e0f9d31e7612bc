//! The problem document (RFC 9457) every error of both HTTP services answers with, and what decides
//! that a database error is an outage (503) rather than a failure of the request (500).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a 503 asks the client to wait before retrying, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "2";

/// Whether a database error means PostgreSQL is unreachable or restarting (a 503 the client may
/// retry), rather than a failure of this request (a 500).
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 is a connection exception; 57P01-57P03 are an administrator or crash shutdown
        // and "cannot connect now" (starting up or in recovery); 53300 is too many connections.
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:claimledger:problem:invalid-field`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The full sentence.
    pub detail: String,
    /// The field, header or path parameter concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why it was refused, when a field is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For version conflicts: the session's current version, to retry with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl Problem {
    /// The problem with every control character in its texts written as an escape (`\u{1b}`):
    /// a field or parameter name echoes what the client sent, and a problem must never carry a
    /// terminal escape sequence to whoever reads it.
    pub fn escaped(self) -> Problem {
        Problem {
            title: escape_controls(&self.title),
            detail: escape_controls(&self.detail),
            field: self.field.as_deref().map(escape_controls),
            reason: self.reason.as_deref().map(escape_controls),
            ..self
        }
    }
}

fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|character| {
            if character.is_control() {
                character.escape_unicode().to_string()
            } else {
                character.to_string()
            }
        })
        .collect()
}

/// A problem answer built from its parts (for answers that are not an [`crate::error::ApiError`]).
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    field: &str,
    reason: &str,
) -> Response {
    let problem = Problem {
        problem_type: format!("urn:claimledger:problem:{slug}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: format!("{field}: {reason}"),
        field: Some(field.to_owned()),
        reason: Some(reason.to_owned()),
        current_version: None,
    }
    .escaped();
    let mut response = (status, Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}
