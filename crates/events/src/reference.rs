//! Payloads of the chain's reference data: clinics, therapists, payers, patients, coverages and
//! referrals. Each is its own aggregate (see [`crate::AggregateKind`]); PostgreSQL tables of them are
//! projections of these events.
//!
//! PHI never appears here: a patient's name and date of birth, and a coverage's member id, are kept
//! in PostgreSQL under the patient's id (and forgotten with [`PatientForgotten`]). These events carry
//! ids, provider identifiers (NPIs are public), codes and dates only.

use rkyv::{Archive, Deserialize, Serialize};

use crate::codes::Icd10Code;
use crate::ids::{PatientId, PayerId};
use crate::time::EpochDay;

/// A clinic (site) joined the chain.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClinicRegistered {
    /// The clinic's trading name.
    pub name: String,
    /// The clinic's organisational NPI (CMS-1500 item 33a).
    pub npi: String,
    /// The billing tax id, EIN or SSN digits (item 25).
    pub tax_id: String,
    /// Street address (item 32).
    pub address_line: String,
    /// City.
    pub city: String,
    /// Two-letter state code.
    pub state: String,
    /// ZIP code.
    pub postal_code: String,
    /// IANA time zone name; it turns session instants into dates of service.
    pub time_zone: String,
    /// CMS place-of-service code, two digits (item 24B).
    pub place_of_service: String,
}

/// A therapist joined the chain.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct TherapistRegistered {
    /// The therapist's name as printed on claims (a provider's name is not PHI).
    pub name: String,
    /// The individual NPI (rendering provider, item 24J).
    pub npi: String,
    /// State licence number.
    pub licence_number: String,
    /// Two-letter state code of the licence.
    pub licence_state: String,
}

/// A payer was registered with the chain.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PayerRegistered {
    /// The payer's name.
    pub name: String,
    /// The key of the payer's rules file; the payer id is derived from it.
    pub rules_key: String,
}

/// A patient was registered. The event says only that the id exists; the PHI stays in PostgreSQL.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PatientRegistered {}

/// A patient's PHI was destroyed at their request; the id remains, pseudonymous, so history
/// still adds up.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PatientForgotten {
    /// Why, as entered by staff (no PHI).
    pub reason: String,
}

/// A patient's coverage by a payer was recorded; the member id is PHI and stays in PostgreSQL.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct CoverageRecorded {
    /// The covered patient.
    pub patient: PatientId,
    /// The payer.
    pub payer: PayerId,
    /// The first covered day.
    pub valid_from: EpochDay,
    /// The last covered day, if the coverage ends.
    pub valid_to: Option<EpochDay>,
}

/// A referral or prescription was recorded.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ReferralRecorded {
    /// The referred patient.
    pub patient: PatientId,
    /// The referring provider's NPI (item 17b).
    pub referring_npi: String,
    /// The diagnoses it was issued for, primary first.
    pub diagnoses: Vec<Icd10Code>,
    /// How many visits it authorises.
    pub authorised_visits: u16,
    /// The day it was issued.
    pub issued_on: EpochDay,
    /// The last day it authorises visits.
    pub expires_on: EpochDay,
}
