//! Request extractors that turn every malformed input into a problem naming the field: the JSON
//! body (kept raw for idempotency hashing), `If-Match`, `Idempotency-Key` and the correlation id.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use claimledger_http_edge::text::check_strings;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;

/// The longest idempotency key accepted.
pub(crate) const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// A JSON body of `T`: size and media type are checked on extraction, the content only when the
/// handler calls [`JsonBody::parse`], after it has checked the caller's role (so a caller without
/// the right learns nothing about validation).
#[derive(Debug)]
pub(crate) struct JsonBody<T> {
    /// The raw body, hashed for idempotency.
    pub raw: Bytes,
    shape: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses the body, naming the field that did not fit.
    pub(crate) fn parse(&self) -> Result<T, ApiError> {
        parse_json(&self.raw)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonBody<T>, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let raw = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge {
                        limit_bytes: state.body_limit_bytes,
                    }
                } else {
                    ApiError::bad_request("body", rejection.body_text())
                }
            })?;
        Ok(JsonBody {
            raw,
            shape: PhantomData,
        })
    }
}

/// Parses `raw` as `T`, naming the field that did not fit. Every string in the body passes
/// the edge's text rule ([`check_strings`]) first, so no handler can append text the read models cannot store.
pub(crate) fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    // Syntax first, on a generic value: a syntax error is a 400 on the body, and the value is what
    // the text rules walk. Type errors come from the typed pass below, which names the field.
    let document: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|error| ApiError::bad_request("body", format!("malformed JSON: {error}")))?;
    check_strings(&document, &mut String::new())
        .map_err(|refusal| ApiError::invalid(&refusal.field, refusal.reason))?;
    // The typed pass reads the raw bytes, so that a duplicate key is refused (a parsed value keeps
    // only the last one).
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|error| {
                ApiError::bad_request("body", format!("malformed JSON: {error}"))
            })?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            // JSON Schema's `integer` admits `2.0`, serde's integers do not: a body whose fault is
            // such a number is read again with its integral numbers as integers.
            if message.contains("invalid type: floating point")
                && let Some(integral) = with_integral_numbers(&document)
            {
                return serde_path_to_error::deserialize(integral).map_err(|error| {
                    let path = error.path().to_string();
                    let message = error.into_inner().to_string();
                    ApiError::invalid(&field_of(&path, &message), strip_position(&message))
                });
            }
            Err(ApiError::invalid(
                &field_of(&path, &message),
                strip_position(&message),
            ))
        }
    }
}

/// `value` with every number that is a whole number written as a fraction (`2.0`, `-3e2`) as an
/// integer, or `None` when it holds none.
fn with_integral_numbers(value: &serde_json::Value) -> Option<serde_json::Value> {
    fn convert(value: &serde_json::Value, changed: &mut bool) -> serde_json::Value {
        match value {
            serde_json::Value::Number(number) if number.is_f64() => {
                let float = number.as_f64().unwrap_or(f64::NAN);
                // Within ±2^53 a whole float is exactly the integer it names.
                if float.fract() == 0.0 && float.abs() <= 9_007_199_254_740_992.0 {
                    *changed = true;
                    #[allow(clippy::cast_possible_truncation)]
                    serde_json::Value::from(float as i64)
                } else {
                    value.clone()
                }
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(|item| convert(item, changed)).collect())
            }
            serde_json::Value::Object(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(name, item)| (name.clone(), convert(item, changed)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut changed = false;
    let converted = convert(value, &mut changed);
    changed.then_some(converted)
}

/// The field a data error concerns: the path to it, plus the name serde quotes for a missing,
/// duplicate or unknown field when the path is the enclosing object (an unknown field's path
/// usually ends with its name already).
fn field_of(path: &str, message: &str) -> String {
    let quoted = ["missing field `", "duplicate field `", "unknown field `"]
        .into_iter()
        .find_map(|prefix| message.split(prefix).nth(1))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { "" } else { path };
    match quoted {
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_owned(),
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_owned(),
        None => parent.to_owned(),
    }
}

fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

/// What every write request carries besides its body.
#[derive(Debug, Clone)]
pub(crate) struct CommandMeta {
    /// The request method.
    pub method: Method,
    /// The request path.
    pub path: String,
    /// The version the client based the command on (`If-Match`).
    pub if_match: Option<u64>,
    /// The client's retry key (`Idempotency-Key`).
    pub idempotency_key: Option<String>,
    /// The external request this command serves (`X-Correlation-Id`, else a new id).
    pub correlation_id: Uuid,
}

impl FromRequestParts<AppState> for CommandMeta {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<CommandMeta, ApiError> {
        Ok(CommandMeta {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            if_match: if_match(&parts.headers)?,
            idempotency_key: idempotency_key(&parts.headers)?,
            correlation_id: header_text(&parts.headers, "x-correlation-id")
                .and_then(|text| Uuid::parse_str(&text).ok())
                .unwrap_or_else(Uuid::now_v7),
        })
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| value.to_str().map(str::to_owned).unwrap_or_default())
}

/// Parses `If-Match: "12"` (an ETag as this API issues them) or a bare `12`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(text) = header_text(headers, header::IF_MATCH.as_str()) else {
        return Ok(None);
    };
    let trimmed = text.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(trimmed);
    unquoted.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "If-Match",
            format!("{trimmed:?} is not a session version (an ETag such as \"12\")"),
        )
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(key) = header_text(headers, "idempotency-key") else {
        return Ok(None);
    };
    let valid = (1..=MAX_IDEMPOTENCY_KEY_LENGTH).contains(&key.len())
        && key.bytes().all(|byte| byte.is_ascii_graphic());
    if !valid {
        return Err(ApiError::bad_request(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters"),
        ));
    }
    Ok(Some(key))
}

/// The ETag of a session version.
pub(crate) fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use claimledger_http_edge::text::MAX_STRING_LENGTH;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        minutes: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[test]
    fn given_a_wrong_type_deep_inside_when_parsed_then_the_field_path_is_named() {
        let error = parse_json::<Outer>(br#"{"name":"x","inner":{"minutes":"ten"}}"#).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("inner.minutes"));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn given_a_missing_field_when_parsed_then_it_is_named() {
        let error = parse_json::<Outer>(br#"{"inner":{"minutes":1}}"#).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("name"));
    }

    #[test]
    fn given_an_unknown_nested_field_when_parsed_then_it_is_named_with_its_parent() {
        let error =
            parse_json::<Outer>(br#"{"name":"x","inner":{"minutes":1,"hours":2}}"#).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("inner.hours"));
    }

    #[test]
    fn given_broken_json_when_parsed_then_it_is_a_400_on_the_body() {
        let error = parse_json::<Outer>(br#"{"name":"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.problem().field.as_deref(), Some("body"));
    }

    #[test]
    fn given_trailing_garbage_when_parsed_then_it_is_a_400() {
        let error = parse_json::<Inner>(br#"{"minutes":1} x"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn given_a_nul_anywhere_in_the_body_when_parsed_then_it_is_refused_naming_the_field() {
        let error =
            parse_json::<Outer>(br#"{"name":"a\u0000b","inner":{"minutes":1}}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.problem().field.as_deref(), Some("name"));
        assert!(error.to_string().contains("U+0000"), "{error}");
        let nested =
            parse_json::<serde_json::Value>(br#"{"lines":[{"x":"ok"},{"x":"\u001b[31m"}]}"#)
                .unwrap_err();
        assert_eq!(nested.problem().field.as_deref(), Some("lines[1].x"));
    }

    #[test]
    fn given_newlines_when_parsed_then_only_free_text_fields_keep_them() {
        assert!(parse_json::<serde_json::Value>(br#"{"reason":"one\ntwo\tthree"}"#).is_ok());
        assert!(
            parse_json::<serde_json::Value>(br#"{"description":"a\nb"}"#).is_ok(),
            "description is free text"
        );
        let error = parse_json::<serde_json::Value>(br#"{"name":"a\nb"}"#).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("name"));
        let c1 = parse_json::<serde_json::Value>(br#"{"reason":"a\u009bb"}"#).unwrap_err();
        assert_eq!(c1.problem().field.as_deref(), Some("reason"));
    }

    #[test]
    fn given_an_overlong_string_when_parsed_then_it_is_refused() {
        let body = format!(r#"{{"reason":"{}"}}"#, "x".repeat(MAX_STRING_LENGTH + 1));
        let error = parse_json::<serde_json::Value>(body.as_bytes()).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("reason"));
    }

    #[test]
    fn given_a_type_error_in_valid_json_when_parsed_then_it_names_the_field_not_the_syntax() {
        let error = parse_json::<Outer>(br#"{"name":1,"inner":{"minutes":1}}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.problem().field.as_deref(), Some("name"));
        assert!(!error.to_string().contains("malformed"), "{error}");
    }

    #[test]
    fn given_a_whole_number_written_as_a_fraction_when_parsed_then_it_is_the_integer() {
        let parsed = parse_json::<Inner>(br#"{"minutes":20.0}"#).expect("20.0 is an integer");
        assert_eq!(parsed.minutes, 20);
        let large = parse_json::<serde_json::Value>(br#"{"cents":2251799813685247.0}"#)
            .and_then(|value| {
                serde_json::from_value::<i64>(
                    with_integral_numbers(&value).expect("a fraction")["cents"].clone(),
                )
                .map_err(ApiError::from)
            })
            .expect("a whole number below 2^53 stays whole");
        assert_eq!(large, 2_251_799_813_685_247);
        let error = parse_json::<Inner>(br#"{"minutes":20.5}"#).unwrap_err();
        assert_eq!(error.problem().field.as_deref(), Some("minutes"));
    }

    #[test]
    fn given_a_duplicate_key_when_parsed_then_it_is_named() {
        let error =
            parse_json::<Outer>(br#"{"name":"a","name":"b","inner":{"minutes":1}}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.problem().field.as_deref(), Some("name"));
    }

    #[test]
    fn given_if_match_forms_when_parsed_then_quoted_and_bare_versions_are_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"42\""));
        assert_eq!(if_match(&headers).unwrap(), Some(42));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("7"));
        assert_eq!(if_match(&headers).unwrap(), Some(7));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(
            if_match(&headers).unwrap_err().problem().field.as_deref(),
            Some("If-Match")
        );
    }

    #[test]
    fn given_an_idempotency_key_with_spaces_when_parsed_then_it_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_static("a b"));
        assert!(idempotency_key(&headers).is_err());
        headers.insert("idempotency-key", HeaderValue::from_static("retry-1"));
        assert_eq!(
            idempotency_key(&headers).unwrap().as_deref(),
            Some("retry-1")
        );
    }
}
