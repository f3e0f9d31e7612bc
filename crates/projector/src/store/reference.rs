//! The reference tables' SQL: one `INSERT … FROM UNNEST … ON CONFLICT` per table a batch changed,
//! in the batch's transaction.

use std::collections::BTreeMap;

use claimledger_derive::keys::EntityKey;
use claimledger_derive::reference::{
    ClinicRow, CoverageRow, PatientRow, PayerRow, ReferenceChanges, ReferralRow, TherapistRow,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectorError;

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

fn keys<T>(rows: &BTreeMap<EntityKey, T>) -> (Vec<Uuid>, Vec<Uuid>) {
    rows.keys().map(|key| (key.chain, key.id)).unzip()
}

fn texts<T>(rows: &BTreeMap<EntityKey, T>, field: fn(&T) -> &str) -> Vec<&str> {
    rows.values().map(field).collect()
}

fn sequences<T>(rows: &BTreeMap<EntityKey, T>, field: fn(&T) -> i64) -> Vec<i64> {
    rows.values().map(field).collect()
}

async fn write_clinics(
    connection: &mut PgConnection,
    schema: &str,
    rows: &BTreeMap<EntityKey, ClinicRow>,
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
    rows: &BTreeMap<EntityKey, TherapistRow>,
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
    rows: &BTreeMap<EntityKey, PayerRow>,
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
    rows: &BTreeMap<EntityKey, PatientRow>,
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
    rows: &BTreeMap<EntityKey, CoverageRow>,
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
    rows: &BTreeMap<EntityKey, ReferralRow>,
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
