//! Reference data from the log: clinics, therapists, payers, patients (pseudonymous), coverages and
//! referrals, folded into the rows of the read-model schema's reference tables.
//!
//! A batch keeps the latest row per entity (a patient registered and forgotten in one batch is one
//! forgotten row). These rows are also where the provider [`crate::directory::Directory`] is read
//! from, so a rebuild derives claims from the log alone.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use claimledger_events::{Commit, Event};
use claimledger_sessions::schema::from_epoch_day;
use uuid::Uuid;

use crate::keys::EntityKey;

/// A clinic row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicRow {
    pub name: String,
    pub npi: String,
    pub tax_id: String,
    pub address_line: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub time_zone: String,
    pub place_of_service: String,
    pub last_sequence: i64,
}

/// A therapist row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TherapistRow {
    pub name: String,
    pub npi: String,
    pub licence_number: String,
    pub licence_state: String,
    pub last_sequence: i64,
}

/// A payer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerRow {
    pub name: String,
    pub rules_key: String,
    pub last_sequence: i64,
}

/// A patient row (no PHI: the log has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRow {
    pub forgotten: bool,
    pub last_sequence: i64,
}

/// A coverage row (the member id is PHI and not on the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRow {
    pub patient: Uuid,
    pub payer: Uuid,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub last_sequence: i64,
}

/// A referral row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRow {
    pub patient: Uuid,
    pub referring_npi: String,
    pub diagnoses: String,
    pub authorised_visits: i32,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub last_sequence: i64,
}

/// The reference rows one batch changes, the latest per entity.
#[derive(Debug, Default)]
pub struct ReferenceChanges {
    pub clinics: BTreeMap<EntityKey, ClinicRow>,
    pub therapists: BTreeMap<EntityKey, TherapistRow>,
    pub payers: BTreeMap<EntityKey, PayerRow>,
    pub patients: BTreeMap<EntityKey, PatientRow>,
    pub coverages: BTreeMap<EntityKey, CoverageRow>,
    pub referrals: BTreeMap<EntityKey, ReferralRow>,
}

/// Folds one reference commit (any of the six reference kinds) stored at `sequence`. A commit whose
/// dates are out of range is refused whole, with the reason, and nothing of it is kept.
pub fn fold_reference(
    sequence: u64,
    commit: &Commit,
    changes: &mut ReferenceChanges,
) -> Result<(), String> {
    let key = EntityKey {
        chain: commit.chain.as_uuid(),
        id: commit.aggregate_id.as_uuid(),
    };
    let last_sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
    let mut staged = ReferenceChanges::default();
    for record in &commit.events {
        match &record.event {
            Event::ClinicRegistered(clinic) => {
                staged.clinics.insert(
                    key,
                    ClinicRow {
                        name: clinic.name.clone(),
                        npi: clinic.npi.clone(),
                        tax_id: clinic.tax_id.clone(),
                        address_line: clinic.address_line.clone(),
                        city: clinic.city.clone(),
                        state: clinic.state.clone(),
                        postal_code: clinic.postal_code.clone(),
                        time_zone: clinic.time_zone.clone(),
                        place_of_service: clinic.place_of_service.clone(),
                        last_sequence,
                    },
                );
            }
            Event::TherapistRegistered(therapist) => {
                staged.therapists.insert(
                    key,
                    TherapistRow {
                        name: therapist.name.clone(),
                        npi: therapist.npi.clone(),
                        licence_number: therapist.licence_number.clone(),
                        licence_state: therapist.licence_state.clone(),
                        last_sequence,
                    },
                );
            }
            Event::PayerRegistered(payer) => {
                staged.payers.insert(
                    key,
                    PayerRow {
                        name: payer.name.clone(),
                        rules_key: payer.rules_key.clone(),
                        last_sequence,
                    },
                );
            }
            Event::PatientRegistered(_) => {
                staged.patients.insert(
                    key,
                    PatientRow {
                        forgotten: false,
                        last_sequence,
                    },
                );
            }
            Event::PatientForgotten(_) => {
                staged.patients.insert(
                    key,
                    PatientRow {
                        forgotten: true,
                        last_sequence,
                    },
                );
            }
            Event::CoverageRecorded(coverage) => {
                staged.coverages.insert(
                    key,
                    CoverageRow {
                        patient: coverage.patient.as_uuid(),
                        payer: coverage.payer.as_uuid(),
                        valid_from: day(coverage.valid_from)?,
                        valid_to: coverage.valid_to.map(day).transpose()?,
                        last_sequence,
                    },
                );
            }
            Event::ReferralRecorded(referral) => {
                let mut diagnoses = String::new();
                for (index, code) in referral.diagnoses.iter().enumerate() {
                    if index > 0 {
                        diagnoses.push(',');
                    }
                    diagnoses.push_str(code.as_str());
                }
                staged.referrals.insert(
                    key,
                    ReferralRow {
                        patient: referral.patient.as_uuid(),
                        referring_npi: referral.referring_npi.clone(),
                        diagnoses,
                        authorised_visits: i32::from(referral.authorised_visits),
                        issued_on: day(referral.issued_on)?,
                        expires_on: day(referral.expires_on)?,
                        last_sequence,
                    },
                );
            }
            other => {
                return Err(format!(
                    "a {} commit holds a {} event",
                    commit.aggregate_kind.subject_token(),
                    other.type_name()
                ));
            }
        }
    }
    changes.clinics.extend(staged.clinics);
    changes.therapists.extend(staged.therapists);
    changes.payers.extend(staged.payers);
    changes.patients.extend(staged.patients);
    changes.coverages.extend(staged.coverages);
    changes.referrals.extend(staged.referrals);
    Ok(())
}

fn day(day: claimledger_events::EpochDay) -> Result<NaiveDate, String> {
    from_epoch_day(day).map_err(|error| error.to_string())
}
