//! The reference endpoints' field rules: each refusal names its field and says what is accepted.

use axum::http::StatusCode;
use chrono::{Months, NaiveDate};
use claimledger_billing::validation::Npi;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::CommandMeta;
use crate::idempotency::{Answer, derived_id};

/// The longest reason accepted, as for the session commands' reasons.
pub(crate) const MAX_REASON_LENGTH: usize = claimledger_sessions::command::MAX_TEXT_LENGTH;

/// The longest free-text name or address line accepted.
pub(crate) const MAX_NAME_LENGTH: usize = 200;

/// A 201 answer with the new resource at `location`.
pub(crate) fn created<T: Serialize>(location: String, body: &T) -> Result<Answer, ApiError> {
    Ok(Answer {
        status: StatusCode::CREATED,
        version: None,
        location: Some(location),
        body: serde_json::to_value(body)?,
    })
}

/// The new resource's id: derived from the `Idempotency-Key` when there is one, so a retry
/// answers with the same id.
pub(crate) fn new_id(principal: &Principal, meta: &CommandMeta, purpose: &str) -> Uuid {
    meta.idempotency_key
        .as_deref()
        .map_or_else(Uuid::now_v7, |key| {
            derived_id(principal.chain, purpose, key)
        })
}

/// A name or address line: trimmed, 1 to [`MAX_NAME_LENGTH`] characters.
pub(crate) fn text(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_LENGTH {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The earliest date any field accepts.
pub(crate) const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// How far ahead of today a coverage or referral date may lie, in years.
pub(crate) const MAX_YEARS_AHEAD: u32 = 10;

/// Refuses a date before [`EARLIEST_DATE`] or more than [`MAX_YEARS_AHEAD`] years after `today`:
/// such a date is a typing error, and it would follow every claim that reads it.
pub(crate) fn plausible_date(
    field: &str,
    date: NaiveDate,
    today: NaiveDate,
) -> Result<(), ApiError> {
    let latest = today
        .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
        .unwrap_or(NaiveDate::MAX);
    if date < EARLIEST_DATE || date > latest {
        return Err(ApiError::invalid(
            field,
            format!("must be between {EARLIEST_DATE} and {latest}, got {date}"),
        ));
    }
    Ok(())
}

/// Refuses a range whose days are not plausible, or whose last day (if it has one) comes before its
/// first; each refusal names its field.
pub(crate) fn plausible_range(
    (first_field, first): (&str, NaiveDate),
    (last_field, last): (&str, Option<NaiveDate>),
    today: NaiveDate,
) -> Result<(), ApiError> {
    plausible_date(first_field, first, today)?;
    if let Some(last) = last {
        plausible_date(last_field, last, today)?;
        if last < first {
            return Err(ApiError::invalid(
                last_field,
                format!("must not be before {first_field}"),
            ));
        }
    }
    Ok(())
}

/// A rules-file payer identifier: 1 to 64 lowercase letters, digits and hyphens.
pub(crate) fn rules_key(field: &str, value: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !valid {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 64 lowercase letters, digits and hyphens, as in the rules files",
        ));
    }
    Ok(value.to_owned())
}

/// A two-letter upper-case state code.
pub(crate) fn state_code(field: &str, value: &str) -> Result<String, ApiError> {
    if value.len() == 2 && value.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Ok(value.to_owned());
    }
    Err(ApiError::invalid(
        field,
        format!("{value:?} is not a two-letter upper-case state code"),
    ))
}

/// A valid NPI (check digit included).
pub(crate) fn npi(field: &str, value: &str) -> Result<String, ApiError> {
    Npi::parse(field, value)
        .map(|npi| npi.as_str().to_owned())
        .map_err(|error| ApiError::invalid(field, error.problem.to_string()))
}
