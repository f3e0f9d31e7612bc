//! The HTTP handlers: `/v1/reports/{reimbursement,denial-reasons,best-code,outliers}`, each as
//! JSON or CSV (`?format=csv`, or `Accept: text/csv`).
//!
//! Query parameters are parsed by hand rather than by a serde extractor, so that every refusal
//! (unknown, repeated or malformed parameter) names the parameter. The chain comes from the API
//! key, never from the request; a key limited to some clinics reports on those clinics only.

// utoipa's `IntoParams` expansion in `#[utoipa::path(params(..))]` qualifies paths that are
// already in scope; the lint fires on generated code only.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use claimledger_http_edge::keys::{Principal, Role, principal_of};
use serde::Serialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::filter::{
    Dimension, ReportFilter, Source, parse_code, parse_date, parse_region, parse_uuid,
};
use crate::insights::{
    BestCodeReport, DEFAULT_MIN_LINES, DEFAULT_Z_THRESHOLD, OutliersReport, Thresholds,
};
use crate::problem::{ApiError, Problem};
use crate::reimbursement::{DenialReasonsReport, ReimbursementReport, ReportQuery};
use crate::startup::AppState;
use crate::table::Table;

/// The roles that may read reports.
pub const READERS: [Role; 3] = [Role::Analyst, Role::Billing, Role::Admin];

/// The default number of denial reasons per group.
pub const DEFAULT_DENIAL_LIMIT: i64 = 5;

/// An authenticated caller allowed to read reports.
#[derive(Debug, Clone)]
pub struct Reader(pub Principal);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Reader, ApiError> {
        let principal = principal_of(&parts.headers, &state.pool).await?;
        if !READERS.contains(&principal.role) {
            return Err(ApiError::Forbidden {
                field: "role".to_owned(),
                reason: format!(
                    "reports need the role analyst, billing or admin; the key has {}",
                    principal.role.as_str()
                ),
            });
        }
        Ok(Reader(principal))
    }
}

/// The query parameters of one request, taken one by one; what is left over is unknown.
#[derive(Debug)]
struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    fn new(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Params, ApiError> {
        let Query(pairs) =
            query.map_err(|rejection| ApiError::bad_parameter("query", rejection.body_text()))?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if values.contains_key(&name) {
                return Err(ApiError::bad_parameter(&name, "is given more than once"));
            }
            // `payer_id=` is a client that meant to filter and lost its value: refusing it beats
            // answering for every payer.
            if value.is_empty() {
                return Err(ApiError::bad_parameter(
                    &name,
                    "is empty; omit the parameter to leave it unset",
                ));
            }
            if let Some(character) = value.chars().find(|character| character.is_control()) {
                return Err(ApiError::bad_parameter(
                    &name,
                    format!("holds the control character U+{:04X}", u32::from(character)),
                ));
            }
            values.insert(name, value);
        }
        Ok(Params { values })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    fn finish(self) -> Result<(), ApiError> {
        match self.values.into_keys().next() {
            Some(name) => Err(ApiError::bad_parameter(
                &name,
                "is not a parameter of this report",
            )),
            None => Ok(()),
        }
    }

    /// The filter (defaulting to the last twelve months) limited to the key's clinics, and the source.
    fn filter(&mut self, reader: &Reader) -> Result<(ReportFilter, Source), ApiError> {
        let mut filter = ReportFilter::last_year(Utc::now().date_naive());
        if let Some(from) = self.take("from") {
            filter.from = parse_date("from", &from)?;
        }
        if let Some(to) = self.take("to") {
            filter.to = parse_date("to", &to)?;
        }
        let clinic = self
            .take("clinic_id")
            .map(|clinic| parse_uuid("clinic_id", &clinic))
            .transpose()?;
        filter.clinics = match (clinic, &reader.0.clinics) {
            (Some(clinic), Some(scope)) if !scope.iter().any(|id| id.as_uuid() == clinic) => {
                return Err(ApiError::Forbidden {
                    field: "clinic_id".to_owned(),
                    reason: "the key is limited to other clinics of the chain".to_owned(),
                });
            }
            (Some(clinic), _) => Some(vec![clinic]),
            (None, Some(scope)) => Some(scope.iter().map(|id| id.as_uuid()).collect()),
            (None, None) => None,
        };
        filter.region = self
            .take("region")
            .map(|region| parse_region(&region))
            .transpose()?;
        filter.payer = self
            .take("payer_id")
            .map(|payer| parse_uuid("payer_id", &payer))
            .transpose()?;
        filter.code = self
            .take("code")
            .map(|code| parse_code(&code))
            .transpose()?;
        filter.validate()?;
        let source = match self.take("source") {
            Some(source) => Source::parse(&source)?,
            None => Source::Auto,
        };
        Ok((filter, source))
    }

    fn group_by(&mut self) -> Result<Vec<Dimension>, ApiError> {
        Ok(Dimension::parse_list(
            &self.take("group_by").unwrap_or_default(),
        )?)
    }

    fn format(&mut self, headers: &HeaderMap) -> Result<Format, ApiError> {
        match self.take("format").as_deref() {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::bad_parameter(
                "format",
                format!("{other:?} is not a format (json, csv)"),
            )),
            None => {
                let wants_csv = headers
                    .get(header::ACCEPT)
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|accept| accept.contains("text/csv"));
                Ok(if wants_csv { Format::Csv } else { Format::Json })
            }
        }
    }

    fn integer(&mut self, name: &str, default: i64) -> Result<i64, ApiError> {
        self.take(name).map_or(Ok(default), |text| {
            text.parse().map_err(|_| {
                ApiError::bad_parameter(name, format!("{text:?} is not a whole number"))
            })
        })
    }

    fn thresholds(&mut self) -> Result<Thresholds, ApiError> {
        let min_lines = self.integer("min_lines", DEFAULT_MIN_LINES)?;
        let z_threshold = match self.take("z_threshold") {
            Some(text) => text.parse().map_err(|_| {
                ApiError::bad_parameter("z_threshold", format!("{text:?} is not a number"))
            })?,
            None => DEFAULT_Z_THRESHOLD,
        };
        let thresholds = Thresholds {
            min_lines,
            z_threshold,
        };
        thresholds.validate()?;
        Ok(thresholds)
    }
}

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn answer<'a, T>(report: &'a T, format: Format, name: &str) -> Response
where
    T: Serialize,
    Table: From<&'a T>,
{
    match format {
        Format::Json => Json(report).into_response(),
        Format::Csv => {
            let mut response = Table::from(report).to_csv().into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(value) =
                HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\""))
            {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
    }
}

/// The parameters every report takes (for the OpenAPI document; parsing is [`Params`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CommonParams {
    /// First date of service (YYYY-MM-DD); default: the first day of the month eleven months ago.
    /// Not after `to`; the range covers at most 1,830 days (five years).
    #[param(format = Date)]
    from: Option<String>,
    /// Last date of service, inclusive; default: the last day of this month.
    #[param(format = Date)]
    to: Option<String>,
    /// Only this clinic.
    clinic_id: Option<Uuid>,
    /// Only clinics in this region (US state, e.g. WA).
    #[param(pattern = "^[A-Z]{2}$")]
    region: Option<String>,
    /// Only this payer.
    payer_id: Option<Uuid>,
    /// Only this procedure code (e.g. 97140): five digits or capital letters.
    #[param(pattern = "^[0-9A-Z]{5}$")]
    code: Option<String>,
    /// `auto` (default: rollups for whole months, lines otherwise), `rollups` or `lines`.
    #[param(pattern = "^(auto|rollups|lines)$")]
    source: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// Grouping (reimbursement and denial reasons).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct GroupingParams {
    /// Comma-separated dimensions, each at most once: code, payer, clinic, month (default: one
    /// total row).
    #[param(pattern = "^(code|payer|clinic|month)(,(code|payer|clinic|month)){0,3}$")]
    group_by: Option<String>,
}

/// How many denial reasons per group.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LimitParams {
    /// Reasons per group, 1 to 100 (default 5).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// The evidence and distance thresholds of best code and outliers.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ThresholdParams {
    /// Adjudicated lines a code (best code) or clinic (outliers) needs (default 20).
    #[param(minimum = 1)]
    min_lines: Option<i64>,
    /// Outliers: the |z| from which a clinic stands out (default 3): a positive number.
    #[param(exclusive_minimum = 0)]
    z_threshold: Option<f64>,
}

/// Billed, allowed, paid, units, code yield, denial rate and days to payment per group.
#[utoipa::path(get, path = "/v1/reports/reimbursement", tag = "reports",
    params(CommonParams, GroupingParams),
    responses((status = 200, description = "One row per group; CSV with ?format=csv or Accept: text/csv", content((ReimbursementReport = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn reimbursement(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut params = Params::new(query)?;
    let (filter, source) = params.filter(&reader)?;
    let group_by = params.group_by()?;
    let format = params.format(&headers)?;
    params.finish()?;
    let query = ReportQuery {
        filter,
        group_by,
        source,
    };
    let report = state
        .reports
        .reimbursement(reader.0.chain.as_uuid(), &query)
        .await?;
    Ok(answer(&report, format, "reimbursement"))
}

/// The most frequent denial reasons (group code and CARC) per group.
#[utoipa::path(get, path = "/v1/reports/denial-reasons", tag = "reports",
    params(CommonParams, GroupingParams, LimitParams),
    responses((status = 200, description = "The top reasons per group; CSV with ?format=csv or Accept: text/csv", content((DenialReasonsReport = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn denial_reasons(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut params = Params::new(query)?;
    let (filter, source) = params.filter(&reader)?;
    let group_by = params.group_by()?;
    let limit = params.integer("limit", DEFAULT_DENIAL_LIMIT)?;
    let format = params.format(&headers)?;
    params.finish()?;
    let query = ReportQuery {
        filter,
        group_by,
        source,
    };
    let report: DenialReasonsReport = state
        .reports
        .denial_reasons(reader.0.chain.as_uuid(), &query, limit)
        .await?;
    Ok(answer(&report, format, "denial-reasons"))
}

/// The best-paying code per payer from observed payments, with the evidence.
#[utoipa::path(get, path = "/v1/reports/best-code", tag = "reports",
    params(CommonParams, ThresholdParams),
    responses((status = 200, description = "One entry per payer; CSV with ?format=csv or Accept: text/csv", content((BestCodeReport = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn best_code(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut params = Params::new(query)?;
    let (filter, source) = params.filter(&reader)?;
    let thresholds = params.thresholds()?;
    let format = params.format(&headers)?;
    params.finish()?;
    let report = state
        .reports
        .best_code(reader.0.chain.as_uuid(), &filter, source, thresholds)
        .await?;
    Ok(answer(&report, format, "best-code"))
}

/// Clinics whose code yield or denial rate stands out from the rest of the chain (leave-one-out
/// z-score; needs a key for the whole chain).
#[utoipa::path(get, path = "/v1/reports/outliers", tag = "reports",
    params(CommonParams, ThresholdParams),
    responses((status = 200, description = "The clinics that stand out; CSV with ?format=csv or Accept: text/csv", content((OutliersReport = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn outliers(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    if reader.0.clinics.is_some() {
        // Comparing a clinic with the chain reveals the other clinics' figures.
        return Err(ApiError::Forbidden {
            field: "clinic_id".to_owned(),
            reason:
                "outliers compare every clinic of the chain; the key is limited to some clinics"
                    .to_owned(),
        });
    }
    let mut params = Params::new(query)?;
    let (filter, source) = params.filter(&reader)?;
    let thresholds = params.thresholds()?;
    let format = params.format(&headers)?;
    params.finish()?;
    let report = state
        .reports
        .outliers(reader.0.chain.as_uuid(), &filter, source, thresholds)
        .await?;
    Ok(answer(&report, format, "outliers"))
}
