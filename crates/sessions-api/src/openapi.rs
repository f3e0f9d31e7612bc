//! The OpenAPI document of the sessions API, generated from the handlers' annotations and the DTOs.
//!
//! The same document is checked in at `crates/sessions-api/openapi.json`; a test fails when the
//! served document and the file differ (regenerate with `UPDATE_OPENAPI=1 cargo test -p
//! claimledger-sessions-api --test it openapi`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::{claims, keys, reference, sessions};
use crate::{auth, dto, error};

/// The API's OpenAPI description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ClaimLedger sessions API", description = "Clinics record visits; every change becomes an event on the log."),
    paths(
        keys::create_key,
        keys::list_keys,
        keys::revoke_key,
        reference::create_clinic,
        reference::get_clinic,
        reference::create_therapist,
        reference::create_payer,
        reference::create_patient,
        reference::get_patient,
        reference::forget_patient,
        reference::create_coverage,
        reference::create_referral,
        sessions::schedule,
        sessions::get_session,
        sessions::check_in,
        sessions::record_service,
        sessions::record_modality,
        sessions::attach_diagnoses,
        sessions::complete,
        sessions::cancel,
        sessions::no_show,
        sessions::amend,
        sessions::void_service,
        claims::get_claim,
        claims::submit,
        claims::adjudicate,
        claims::resubmit,
        claims::write_off,
    ),
    components(schemas(auth::Role, error::Problem, dto::PaymentDto, dto::DiagnosisCode)),
    modifiers(&BearerKey),
    tags(
        (name = "sessions", description = "The session lifecycle"),
        (name = "claims", description = "The claim lifecycle: submission, remittances, resubmission, write-off"),
        (name = "reference", description = "Clinics, therapists, payers, patients, coverages, referrals"),
        (name = "keys", description = "API keys"),
    )
)]
pub(crate) struct ApiDoc;

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

/// The document as served and checked in: truthful, pretty JSON with a trailing newline.
pub(crate) fn document() -> String {
    claimledger_http_edge::openapi::render(&ApiDoc::openapi())
}
