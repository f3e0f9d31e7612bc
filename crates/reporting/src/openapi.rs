//! The OpenAPI document of the reporting service, generated from the handlers' annotations.
//!
//! It is checked in at `crates/reporting/openapi.json`; a test fails when the served document and
//! the file differ (regenerate with `UPDATE_OPENAPI=1 cargo test -p claimledger-reporting --test it
//! openapi`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{insights, problem, reimbursement, routes};

/// The API's OpenAPI description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ClaimLedger reporting API", description = "What a chain was paid, by code, payer, clinic and month. Every answer is limited to the API key's chain (and clinics), in code and by row-level security in the database."),
    paths(
        routes::reimbursement,
        routes::denial_reasons,
        routes::best_code,
        routes::outliers,
    ),
    components(schemas(
        problem::Problem,
        reimbursement::ReimbursementReport,
        reimbursement::ReimbursementRow,
        reimbursement::DenialReasonsReport,
        reimbursement::DenialReasonRow,
        insights::BestCodeReport,
        insights::BestCode,
        insights::CodeYield,
        insights::OutliersReport,
        insights::Outlier,
        insights::Metric,
    )),
    modifiers(&BearerKey),
    tags((name = "reports", description = "Reimbursement, denial reasons, best code per payer, outlier clinics"))
)]
pub struct ApiDoc;

/// Declares the `Authorization: Bearer <key>` scheme.
#[derive(Debug)]
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served and checked in: pretty JSON with a trailing newline.
pub fn document() -> String {
    claimledger_http_edge::openapi::render(&ApiDoc::openapi())
}
