//! OpenAPI documents that say what the server does (for client generators and schemathesis).

use crate::problem::PROBLEM_JSON;
use crate::text::{FREE_TEXT_FIELDS, MAX_STRING_LENGTH};

/// A generated document as served and checked in: made truthful, pretty JSON, a trailing newline.
pub fn render(document: &utoipa::openapi::OpenApi) -> String {
    let mut text = serde_json::to_value(document)
        .map(|mut document| {
            make_truthful(&mut document);
            document
        })
        .and_then(|document| serde_json::to_string_pretty(&document))
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
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

/// Characters every string of a request body may hold (see [`crate::text::check_strings`]).
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
        let free_text = name.is_some_and(|name| FREE_TEXT_FIELDS.contains(&name));
        let pattern = if free_text {
            FREE_TEXT_PATTERN
        } else {
            TEXT_PATTERN
        };
        object.insert("pattern".into(), pattern.into());
        object
            .entry("maxLength")
            .or_insert(MAX_STRING_LENGTH.into());
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
