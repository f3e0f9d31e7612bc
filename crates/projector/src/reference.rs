//! Reference data from the log: clinics, therapists, payers, patients (pseudonymous), coverages and
//! referrals, folded into the read-model schema's tables of migration 0006.
//!
//! A batch keeps the latest row per entity (a patient registered and forgotten in one batch is one
//! forgotten row), then writes one `INSERT … FROM UNNEST … ON CONFLICT` per table in the batch's
//! transaction. These rows are also where the provider [`crate::directory::Directory`] reads from,
//! so a rebuild derives claims from the log alone.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use claimledger_events::{Commit, Event};
use claimledger_sessions::schema::from_epoch_day;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectorError;

/// An entity's key: chain, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    /// The chain.
    pub(crate) chain: Uuid,
    /// The entity.
    pub(crate) id: Uuid,
}

/// A clinic row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClinicRow {
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
pub(crate) struct TherapistRow {
    pub name: String,
    pub npi: String,
    pub licence_number: String,
    pub licence_state: String,
    pub last_sequence: i64,
}

/// A payer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PayerRow {
    pub name: String,
    pub rules_key: String,
    pub last_sequence: i64,
}

/// A patient row (no PHI: the log has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatientRow {
    pub forgotten: bool,
    pub last_sequence: i64,
}

/// A coverage row (the member id is PHI and not on the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoverageRow {
    pub patient: Uuid,
    pub payer: Uuid,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub last_sequence: i64,
}

/// A referral row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferralRow {
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
pub(crate) struct ReferenceChanges {
    pub clinics: BTreeMap<Key, ClinicRow>,
    pub therapists: BTreeMap<Key, TherapistRow>,
    pub payers: BTreeMap<Key, PayerRow>,
    pub patients: BTreeMap<Key, PatientRow>,
    pub coverages: BTreeMap<Key, CoverageRow>,
    pub referrals: BTreeMap<Key, ReferralRow>,
}

/// Folds one reference commit (any of the six reference kinds) stored at `sequence`. A commit whose
/// dates are out of range is refused whole, with the reason, and nothing of it is kept.
pub(crate) fn fold_reference(
    sequence: u64,
    commit: &Commit,
    changes: &mut ReferenceChanges,
) -> Result<(), String> {
    let key = Key {
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

/// Writes one batch's reference rows into `schema`, one statement per table that changed.
pub(crate) async fn write_reference(
    connection: &mut PgConnection,
    schema: &str,
    changes: &ReferenceChanges,
) -> Result<(), ProjectorError> {
    write_clinics(connection, schema, &changes.clinics).await?;
    write_therapists(connection, schema, &changes.therapists).await?;
    write_payers(connection, schema, &changes.payers).await?;
    write_patients(connection, schema, &changes.patients).await?;
    write_coverages(connection, schema, &changes.coverages).await?;
    write_referrals(connection, schema, &changes.referrals).await?;
    Ok(())
}

fn keys<T>(rows: &BTreeMap<Key, T>) -> (Vec<Uuid>, Vec<Uuid>) {
    rows.keys().map(|key| (key.chain, key.id)).unzip()
}

fn texts<T>(rows: &BTreeMap<Key, T>, field: fn(&T) -> &str) -> Vec<&str> {
    rows.values().map(field).collect()
}

fn sequences<T>(rows: &BTreeMap<Key, T>, field: fn(&T) -> i64) -> Vec<i64> {
    rows.values().map(field).collect()
}

async fn write_clinics(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, ClinicRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.clinics (chain_id, clinic_id, name, npi, tax_id, address_line, city, \
             state, postal_code, time_zone, place_of_service, last_sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[]) \
         ON CONFLICT (chain_id, clinic_id) DO UPDATE SET name = EXCLUDED.name, npi = EXCLUDED.npi, \
             tax_id = EXCLUDED.tax_id, address_line = EXCLUDED.address_line, city = EXCLUDED.city, \
             state = EXCLUDED.state, postal_code = EXCLUDED.postal_code, \
             time_zone = EXCLUDED.time_zone, place_of_service = EXCLUDED.place_of_service, \
             last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(texts(rows, |row| &row.name))
    .bind(texts(rows, |row| &row.npi))
    .bind(texts(rows, |row| &row.tax_id))
    .bind(texts(rows, |row| &row.address_line))
    .bind(texts(rows, |row| &row.city))
    .bind(texts(rows, |row| &row.state))
    .bind(texts(rows, |row| &row.postal_code))
    .bind(texts(rows, |row| &row.time_zone))
    .bind(texts(rows, |row| &row.place_of_service))
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing clinics"))?;
    Ok(())
}

async fn write_therapists(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, TherapistRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.therapists (chain_id, therapist_id, name, npi, licence_number, \
             licence_state, last_sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::int8[]) \
         ON CONFLICT (chain_id, therapist_id) DO UPDATE SET name = EXCLUDED.name, \
             npi = EXCLUDED.npi, licence_number = EXCLUDED.licence_number, \
             licence_state = EXCLUDED.licence_state, last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(texts(rows, |row| &row.name))
    .bind(texts(rows, |row| &row.npi))
    .bind(texts(rows, |row| &row.licence_number))
    .bind(texts(rows, |row| &row.licence_state))
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing therapists"))?;
    Ok(())
}

async fn write_payers(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, PayerRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.payers (chain_id, payer_id, name, rules_key, last_sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[]) \
         ON CONFLICT (chain_id, payer_id) DO UPDATE SET name = EXCLUDED.name, \
             rules_key = EXCLUDED.rules_key, last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(texts(rows, |row| &row.name))
    .bind(texts(rows, |row| &row.rules_key))
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing payers"))?;
    Ok(())
}

async fn write_patients(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, PatientRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.patients (chain_id, patient_id, forgotten, last_sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bool[], $4::int8[]) \
         ON CONFLICT (chain_id, patient_id) DO UPDATE SET forgotten = EXCLUDED.forgotten, \
             last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(rows.values().map(|row| row.forgotten).collect::<Vec<_>>())
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing patients"))?;
    Ok(())
}

async fn write_coverages(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, CoverageRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.coverages (chain_id, coverage_id, patient_id, payer_id, valid_from, \
             valid_to, last_sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::date[], \
             $6::date[], $7::int8[]) \
         ON CONFLICT (chain_id, coverage_id) DO UPDATE SET patient_id = EXCLUDED.patient_id, \
             payer_id = EXCLUDED.payer_id, valid_from = EXCLUDED.valid_from, \
             valid_to = EXCLUDED.valid_to, last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(rows.values().map(|row| row.patient).collect::<Vec<_>>())
    .bind(rows.values().map(|row| row.payer).collect::<Vec<_>>())
    .bind(rows.values().map(|row| row.valid_from).collect::<Vec<_>>())
    .bind(rows.values().map(|row| row.valid_to).collect::<Vec<_>>())
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing coverages"))?;
    Ok(())
}

async fn write_referrals(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<Key, ReferralRow>,
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (chains, ids) = keys(rows);
    sqlx::query(&format!(
        "INSERT INTO {schema}.referrals (chain_id, referral_id, patient_id, referring_npi, \
             diagnoses, authorised_visits, issued_on, expires_on, last_sequence) \
         SELECT chain_id, referral_id, patient_id, referring_npi, string_to_array(diagnoses, ','), \
             authorised_visits, issued_on, expires_on, last_sequence \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int4[], \
             $7::date[], $8::date[], $9::int8[]) \
           AS u(chain_id, referral_id, patient_id, referring_npi, diagnoses, authorised_visits, \
             issued_on, expires_on, last_sequence) \
         ON CONFLICT (chain_id, referral_id) DO UPDATE SET patient_id = EXCLUDED.patient_id, \
             referring_npi = EXCLUDED.referring_npi, diagnoses = EXCLUDED.diagnoses, \
             authorised_visits = EXCLUDED.authorised_visits, issued_on = EXCLUDED.issued_on, \
             expires_on = EXCLUDED.expires_on, last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(chains)
    .bind(ids)
    .bind(rows.values().map(|row| row.patient).collect::<Vec<_>>())
    .bind(texts(rows, |row| &row.referring_npi))
    .bind(texts(rows, |row| &row.diagnoses))
    .bind(
        rows.values()
            .map(|row| row.authorised_visits)
            .collect::<Vec<_>>(),
    )
    .bind(rows.values().map(|row| row.issued_on).collect::<Vec<_>>())
    .bind(rows.values().map(|row| row.expires_on).collect::<Vec<_>>())
    .bind(sequences(rows, |row| row.last_sequence))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing referrals"))?;
    Ok(())
}
