//! The reference tables: one `INSERT … FROM UNNEST … ON CONFLICT` per table a batch changed, in
//! the batch's transaction.

use std::collections::BTreeMap;

use claimledger_derive::keys::EntityKey;
use claimledger_derive::reference::ReferenceChanges;
use sqlx::PgConnection;
use uuid::Uuid;

use super::tables::{
    CLINICS, COVERAGES, OnConflict, PATIENTS, PAYERS, REFERRALS, THERAPISTS, Table, Write,
};
use crate::error::ProjectorError;

/// Writes one batch's reference rows into `schema`, one statement per table that changed.
pub(crate) async fn write_reference(
    connection: &mut PgConnection,
    schema: &str,
    changes: &ReferenceChanges,
) -> Result<(), ProjectorError> {
    let ReferenceChanges {
        clinics,
        therapists,
        payers,
        patients,
        coverages,
        referrals,
    } = changes;
    if !clinics.is_empty() {
        let statement = CLINICS.upsert(schema, OnConflict::Replace);
        keyed(&statement, &CLINICS, clinics)
            .bind(column(clinics, |row| row.name.as_str()))
            .bind(column(clinics, |row| row.npi.as_str()))
            .bind(column(clinics, |row| row.tax_id.as_str()))
            .bind(column(clinics, |row| row.address_line.as_str()))
            .bind(column(clinics, |row| row.city.as_str()))
            .bind(column(clinics, |row| row.state.as_str()))
            .bind(column(clinics, |row| row.postal_code.as_str()))
            .bind(column(clinics, |row| row.time_zone.as_str()))
            .bind(column(clinics, |row| row.place_of_service.as_str()))
            .bind(column(clinics, |row| row.last_sequence))
            .run(&mut *connection, "writing clinics")
            .await?;
    }
    if !therapists.is_empty() {
        let statement = THERAPISTS.upsert(schema, OnConflict::Replace);
        keyed(&statement, &THERAPISTS, therapists)
            .bind(column(therapists, |row| row.name.as_str()))
            .bind(column(therapists, |row| row.npi.as_str()))
            .bind(column(therapists, |row| row.licence_number.as_str()))
            .bind(column(therapists, |row| row.licence_state.as_str()))
            .bind(column(therapists, |row| row.last_sequence))
            .run(&mut *connection, "writing therapists")
            .await?;
    }
    if !payers.is_empty() {
        let statement = PAYERS.upsert(schema, OnConflict::Replace);
        keyed(&statement, &PAYERS, payers)
            .bind(column(payers, |row| row.name.as_str()))
            .bind(column(payers, |row| row.rules_key.as_str()))
            .bind(column(payers, |row| row.last_sequence))
            .run(&mut *connection, "writing payers")
            .await?;
    }
    if !patients.is_empty() {
        let statement = PATIENTS.upsert(schema, OnConflict::Replace);
        keyed(&statement, &PATIENTS, patients)
            .bind(column(patients, |row| row.forgotten))
            .bind(column(patients, |row| row.last_sequence))
            .run(&mut *connection, "writing patients")
            .await?;
    }
    if !coverages.is_empty() {
        let statement = COVERAGES.upsert(schema, OnConflict::Replace);
        keyed(&statement, &COVERAGES, coverages)
            .bind(column(coverages, |row| row.patient))
            .bind(column(coverages, |row| row.payer))
            .bind(column(coverages, |row| row.valid_from))
            .bind(column(coverages, |row| row.valid_to))
            .bind(column(coverages, |row| row.last_sequence))
            .run(&mut *connection, "writing coverages")
            .await?;
    }
    if !referrals.is_empty() {
        let statement = REFERRALS.upsert(schema, OnConflict::Replace);
        keyed(&statement, &REFERRALS, referrals)
            .bind(column(referrals, |row| row.patient))
            .bind(column(referrals, |row| row.referring_npi.as_str()))
            .bind(column(referrals, |row| row.diagnoses.as_str()))
            .bind(column(referrals, |row| row.authorised_visits))
            .bind(column(referrals, |row| row.issued_on))
            .bind(column(referrals, |row| row.expires_on))
            .bind(column(referrals, |row| row.last_sequence))
            .run(&mut *connection, "writing referrals")
            .await?;
    }
    Ok(())
}

/// A write of `rows` with their keys (chain, then the entity's id) bound as the first columns.
fn keyed<'q, T>(
    statement: &'q str,
    table: &'static Table,
    rows: &BTreeMap<EntityKey, T>,
) -> Write<'q> {
    let (chains, ids): (Vec<Uuid>, Vec<Uuid>) = rows.keys().map(|key| (key.chain, key.id)).unzip();
    Write::new(statement, table).bind(chains).bind(ids)
}

/// One field of every row, in key order.
fn column<'a, T, V>(rows: &'a BTreeMap<EntityKey, T>, field: impl Fn(&'a T) -> V) -> Vec<V> {
    rows.values().map(field).collect()
}
