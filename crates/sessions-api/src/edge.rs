//! What both HTTP services share at their edge: path parameters that name themselves when they do
//! not parse, problem bodies for the answers axum and tower give on their own (405, 413, 414 …),
//! and the liveness and readiness checks.

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

use crate::error::{PROBLEM_JSON, Problem, RETRY_AFTER_SECONDS};

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

/// Makes a generated OpenAPI document say what the server does, for client generators and for
/// schemathesis:
/// - a response that flattens a request shape beside its id (`allOf: [ClinicRequest, {id}]`,
///   where the request refuses unknown properties, so no answer could match) becomes one object
///   with both property sets;
/// - every operation documents its 4XX and 5XX answers as problem documents;
/// - header and query parameters state the syntax the server checks, and string properties the
///   text rule every body string obeys.
pub fn make_truthful(document: &mut serde_json::Value) {
    let schemas = document
        .pointer("/components/schemas")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(components) = document
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        for schema in components.values_mut() {
            merge_all_of(schema, &schemas);
        }
        for schema in components.values_mut() {
            state_text_rule(schema, None);
        }
    }
    let problem = serde_json::json!({
        "description": "A problem document naming the field, parameter or dependency concerned",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    });
    if let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for operation in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            for parameter in operation
                .get_mut("parameters")
                .and_then(serde_json::Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                state_parameter_rules(parameter);
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(serde_json::Value::as_object_mut)
            {
                for class in ["4XX", "5XX"] {
                    responses.entry(class).or_insert_with(|| problem.clone());
                }
            }
        }
    }
}

/// Characters every string of a request body may hold (see [`crate::extract::check_strings`]).
const TEXT_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// The same for the free-text fields, which keep newlines and tabs.
const FREE_TEXT_PATTERN: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";

/// States the text rule every request string obeys on string properties that state no stricter
/// syntax of their own (a pattern, a format or an enum), and the longest string accepted.
fn state_text_rule(schema: &mut serde_json::Value, name: Option<&str>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let is_string = object.get("type").is_some_and(|kind| {
        kind == "string"
            || kind
                .as_array()
                .is_some_and(|kinds| kinds.contains(&"string".into()))
    });
    if is_string
        && !object.contains_key("pattern")
        && !object.contains_key("format")
        && !object.contains_key("enum")
    {
        let free_text = name.is_some_and(|name| crate::extract::FREE_TEXT_FIELDS.contains(&name));
        let pattern = if free_text {
            FREE_TEXT_PATTERN
        } else {
            TEXT_PATTERN
        };
        object.insert("pattern".into(), pattern.into());
        object
            .entry("maxLength")
            .or_insert(crate::extract::MAX_STRING_LENGTH.into());
    }
    if let Some(properties) = object
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (property, inner) in properties.iter_mut() {
            state_text_rule(inner, Some(property));
        }
    }
    if let Some(items) = object.get_mut("items") {
        state_text_rule(items, name);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for inner in object
            .get_mut(key)
            .and_then(serde_json::Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            state_text_rule(inner, name);
        }
    }
}

/// States what the server checks of a header or query parameter: the `If-Match` and
/// `Idempotency-Key` syntax, and that a query value is never empty (an empty one is refused rather
/// than taken as absent).
fn state_parameter_rules(parameter: &mut serde_json::Value) {
    let name = parameter
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let place = parameter
        .get("in")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(schema) = parameter
        .get_mut("schema")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    // An optional parameter is left out, never sent as `null`: its type is the value's alone.
    if let Some(kinds) = schema.get("type").and_then(serde_json::Value::as_array)
        && kinds.contains(&"null".into())
    {
        let kinds: Vec<serde_json::Value> = kinds
            .iter()
            .filter(|kind| *kind != "null")
            .cloned()
            .collect();
        let single = match kinds.as_slice() {
            [kind] => kind.clone(),
            _ => serde_json::Value::Array(kinds),
        };
        schema.insert("type".into(), single);
    }
    let is_string = schema.get("type").is_some_and(|kind| {
        kind == "string"
            || kind
                .as_array()
                .is_some_and(|kinds| kinds.contains(&"string".into()))
    });
    if !is_string {
        return;
    }
    match (place.as_str(), name.as_str()) {
        ("header", "If-Match") => {
            schema.insert("pattern".into(), r#"^("[0-9]{1,19}"|[0-9]{1,19})$"#.into());
        }
        ("header", "Idempotency-Key") => {
            schema.insert("pattern".into(), "^[!-~]{1,255}$".into());
        }
        ("query", _) => {
            schema.entry("minLength").or_insert(1.into());
        }
        _ => {}
    }
}

/// Replaces `allOf` of component references and inline objects by one object holding all their
/// properties (and none of their `additionalProperties: false`).
fn merge_all_of(
    schema: &mut serde_json::Value,
    schemas: &serde_json::Map<String, serde_json::Value>,
) {
    let Some(parts) = schema.get("allOf").and_then(serde_json::Value::as_array) else {
        return;
    };
    let mut properties = serde_json::Map::new();
    let mut required: Vec<serde_json::Value> = Vec::new();
    for part in parts {
        let resolved = match part.get("$ref").and_then(serde_json::Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                match schemas.get(name) {
                    Some(target) => target,
                    None => return,
                }
            }
            None => part,
        };
        if resolved.get("allOf").is_some() {
            return;
        }
        if let Some(fields) = resolved
            .get("properties")
            .and_then(serde_json::Value::as_object)
        {
            properties.extend(fields.clone());
        }
        for name in resolved
            .get("required")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    let description = schema.get("description").cloned();
    let mut merged = serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
    });
    if let Some(description) = description {
        merged["description"] = description;
    }
    *schema = merged;
}
