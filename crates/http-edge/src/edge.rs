//! Path parameters that name themselves when they do not parse, problem bodies for the answers
//! axum and hyper give on their own (405, 413, 414 …), and the liveness and readiness checks.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::problem::{RETRY_AFTER_SECONDS, problem_response};

/// The longest request target (path and query) served; a longer one answers 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// A path parameter (or a tuple of them), parsed like [`Path`] but refused as a problem naming the
/// parameter: `id: "abc" is not a UUID`.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath<T>, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(_) => {
                // Every path parameter of both APIs is a UUID: name the first one that is not.
                let raw = RawPathParams::from_request_parts(parts, state).await.ok();
                let (name, value) = raw
                    .iter()
                    .flat_map(|params| params.iter())
                    .find(|(_, value)| uuid::Uuid::parse_str(value).is_err())
                    .map_or(("path".to_owned(), String::new()), |(name, value)| {
                        (name.to_owned(), value.to_owned())
                    });
                Err(problem_response(
                    StatusCode::BAD_REQUEST,
                    "malformed-request",
                    "Malformed request",
                    &name,
                    &format!("{value:?} is not a UUID"),
                ))
            }
        }
    }
}

/// Refuses an over-long request target with a problem, and gives every error answer that left a
/// router or a layer bare (no body, or axum's plain-text rejection) (405 with its `Allow`, 413 from the body limit, a
/// bare 400 …) a problem body; headers such as `Allow` are kept.
pub async fn problem_edges(request: Request, next: Next) -> Response {
    let target_length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_length > MAX_URI_BYTES {
        return problem_response(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "Request target too long",
            "path",
            &format!("the path and query exceed {MAX_URI_BYTES} bytes"),
        );
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    // A bare answer has no body, or axum's plain-text rejection; anything else (a problem, a
    // readiness document) is the handler's own.
    let is_bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_bare {
        return response;
    }
    let (slug, title, field, reason) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response
                .headers()
                .get(header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                "method-not-allowed",
                "Method not allowed",
                "method",
                format!("{method} is not allowed here; allowed: {allowed}"),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Request body too large",
            "body",
            "the request body exceeds the limit".to_owned(),
        ),
        _ => (
            "malformed-request",
            "Request refused",
            "request",
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_lowercase(),
        ),
    };
    let (mut parts, _) = response.into_parts();
    let mut problem = problem_response(status, slug, title, field, &reason);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.remove(&name) {
            problem.headers_mut().insert(name, value);
        }
    }
    problem
}

/// The liveness answer: the process serves requests.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// Log commits this service could not apply and parked (see `parked_events`), when it
    /// applies any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<u64>,
}

/// `GET /health`: liveness only. It never looks at the database or NATS, so an orchestrator does
/// not restart a healthy process because a dependency is down.
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        parked: None,
    })
}

/// The readiness answer: each dependency with whether it answered.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Each check (`database`, `nats`, …) and what it found: `ok` or why not.
    pub checks: BTreeMap<String, String>,
}

/// How long a readiness check waits for a dependency.
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks PostgreSQL with a trivial query, within [`READY_CHECK_TIMEOUT`].
pub async fn check_database(pool: &sqlx::PgPool) -> Result<(), String> {
    match tokio::time::timeout(
        READY_CHECK_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("unreachable: {error}")),
        Err(_) => Err("no answer within 2 s".to_owned()),
    }
}

/// Renders readiness: 200 when every check passed, else 503 with `Retry-After`.
pub fn readiness(checks: BTreeMap<String, Result<(), String>>) -> Response {
    let ready = checks.values().all(Result::is_ok);
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" }.to_owned(),
        checks: checks
            .into_iter()
            .map(|(name, outcome)| (name, outcome.err().unwrap_or_else(|| "ok".to_owned())))
            .collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, Json(body)).into_response();
    if !ready {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}
