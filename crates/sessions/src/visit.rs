//! The conversion of a completed session into the billing core's `Visit`, the input of claim
//! derivation (the projector calls it when a session completes).
//!
//! The session knows what happened; the rest of a claim's header (clinic NPI and tax id, place of
//! service, the therapist's NPI, the referral) is reference data the caller looked up, passed in
//! as [`VisitFacts`].

use chrono_tz::Tz;
use claimledger_billing::claim::{PlaceOfService, Referral, ServiceRecord, UntimedService, Visit};
use claimledger_billing::codes::CptCode;
use claimledger_billing::validation::{Npi, TaxId};
use thiserror::Error;

use crate::session::{Session, SessionStatus};

/// The body region recorded for modalities, which the session does not locate.
pub const UNLOCATED_REGION: &str = "unspecified";

/// The reference data a claim needs besides the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitFacts {
    /// The clinic's time zone, which resolves the date of service.
    pub clinic_time_zone: Tz,
    /// The clinic's place of service.
    pub place_of_service: PlaceOfService,
    /// The clinic's (billing provider's) NPI.
    pub clinic_npi: Npi,
    /// The clinic's federal tax id.
    pub tax_id: TaxId,
    /// The treating therapist's (rendering) NPI.
    pub rendering_npi: Npi,
    /// The referral the session was booked under, if any.
    pub referral: Option<Referral>,
    /// The code the clinician marked as primary, if any (the unit tie-break of decision 3).
    pub primary_code: Option<CptCode>,
}

/// Why a session cannot be billed yet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VisitError {
    /// Only a completed record is billed; one being amended waits for its new completion.
    #[error("status: a {status} session is not billed; only completed ones are")]
    NotCompleted {
        /// The session's status.
        status: SessionStatus,
    },
}

/// The billing core's view of a completed session.
pub fn completed_visit(session: &Session, facts: &VisitFacts) -> Result<Visit, VisitError> {
    let date_of_service = match (
        session.status(),
        session.date_of_service(facts.clinic_time_zone),
    ) {
        (SessionStatus::Completed, Some(date)) => date,
        (status, _) => return Err(VisitError::NotCompleted { status }),
    };
    Ok(Visit {
        date_of_service,
        place_of_service: facts.place_of_service,
        clinic_npi: facts.clinic_npi,
        tax_id: facts.tax_id,
        rendering_npi: facts.rendering_npi,
        services: session
            .services()
            .iter()
            .map(|service| ServiceRecord {
                technique: service.technique,
                code: service.code,
                minutes: u32::from(service.minutes),
                // The side is part of the region, so that left and right count as distinct sites.
                body_region: match service.body_side {
                    Some(side) => format!("{}:{}", service.body_region, side.as_str()),
                    None => service.body_region.to_string(),
                },
                description: service.description.clone(),
            })
            .collect(),
        modalities: session
            .modalities()
            .iter()
            .map(|modality| UntimedService {
                code: modality.code,
                minutes: u32::from(modality.minutes),
                body_region: UNLOCATED_REGION.to_owned(),
            })
            .collect(),
        diagnoses: session
            .diagnoses()
            .iter()
            .map(|code| code.as_str().to_owned())
            .collect(),
        primary_code: facts.primary_code,
        referral: facts.referral.clone(),
    })
}
