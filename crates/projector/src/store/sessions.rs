//! The `sessions` rows: reading back the stored state of the sessions a batch continues, and
//! writing the batch's rows (COPYd, or upserted).

use chrono::NaiveDate;
use claimledger_derive::hashing::HashMap;
use claimledger_derive::keys::SessionKey;
use claimledger_derive::rows::{Footprint, SessionRow, StoredSession};
use claimledger_events::{decode, error_chain};
use sqlx::PgConnection;
use uuid::Uuid;

use super::binary_copy::BinaryCopy;
use super::tables::{OnConflict, SESSIONS, Write};
use crate::error::ProjectorError;

/// A stored session row: where it counts its units, and its history as the log holds it.
#[derive(Debug, sqlx::FromRow)]
struct StoredRow {
    chain_id: Uuid,
    session_id: Uuid,
    clinic_id: Uuid,
    therapist_id: Option<Uuid>,
    date_of_service: Option<NaiveDate>,
    unit_codes: Vec<String>,
    unit_counts: Vec<i32>,
    log_events: Vec<u8>,
}

/// Reads the stored state of the given sessions (those that have a row) in one query.
pub(crate) async fn load_sessions(
    connection: &mut PgConnection,
    schema: &str,
    keys: &[SessionKey],
) -> Result<HashMap<SessionKey, StoredSession>, ProjectorError> {
    if keys.is_empty() {
        return Ok(HashMap::default());
    }
    let chains: Vec<Uuid> = keys.iter().map(|key| key.chain).collect();
    let sessions: Vec<Uuid> = keys.iter().map(|key| key.session).collect();
    let rows: Vec<StoredRow> = sqlx::query_as(&format!(
        "SELECT s.chain_id, s.session_id, s.clinic_id, s.therapist_id, s.date_of_service, \
                s.unit_codes, s.unit_counts, s.log_events \
         FROM {schema}.sessions s \
         JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(chain_id, session_id) \
           ON s.chain_id = k.chain_id AND s.session_id = k.session_id"
    ))
    .bind(&chains)
    .bind(&sessions)
    .persistent(false)
    .fetch_all(connection)
    .await
    .map_err(ProjectorError::db("reading stored sessions"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let events = decode(&row.log_events).map_err(|error| error_chain(&error));
            let stored = StoredSession {
                events,
                footprint: Footprint {
                    clinic: Some(row.clinic_id),
                    therapist: row.therapist_id,
                    day: row.date_of_service,
                    units: row.unit_codes.into_iter().zip(row.unit_counts).collect(),
                },
            };
            (
                SessionKey {
                    chain: row.chain_id,
                    session: row.session_id,
                },
                stored,
            )
        })
        .collect())
}

/// Upserts session rows (a batch applied without COPY).
pub(super) async fn upsert_sessions(
    connection: &mut PgConnection,
    schema: &str,
    rows: &[SessionRow],
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let statement = SESSIONS.upsert(schema, OnConflict::Replace);
    Write::new(&statement, &SESSIONS)
        .column(rows, |row| row.chain)
        .column(rows, |row| row.session)
        .column(rows, |row| row.clinic)
        .column(rows, |row| row.therapist)
        .column(rows, |row| row.patient)
        .column(rows, |row| row.payer)
        .column(rows, |row| row.status)
        .column(rows, |row| row.scheduled_start)
        .column(rows, |row| row.date_of_service)
        .column(rows, |row| row.planned_minutes)
        .column(rows, |row| row.service_minutes)
        .column(rows, |row| row.modality_minutes)
        .column(rows, |row| row.services_json.as_str())
        .column(rows, |row| row.diagnoses.as_str())
        .column(rows, |row| row.unit_codes.as_str())
        .column(rows, |row| row.unit_counts.as_str())
        .column(rows, |row| row.total_units)
        .column(rows, |row| row.last_sequence)
        .column(rows, |row| row.log_events.as_slice())
        .run(connection, "writing sessions")
        .await
}

/// Appends a session row to the sessions COPY stream.
pub(super) fn encode_session(row: &SessionRow, copy: &mut BinaryCopy) {
    copy.row();
    copy.uuid(row.chain);
    copy.uuid(row.session);
    copy.uuid(row.clinic);
    copy.optional_uuid(row.therapist);
    copy.optional_uuid(row.patient);
    copy.optional_uuid(row.payer);
    copy.text(row.status);
    copy.optional_timestamptz(row.scheduled_start);
    copy.optional_date(row.date_of_service);
    copy.optional_int4(row.planned_minutes);
    copy.int4(row.service_minutes);
    copy.int4(row.modality_minutes);
    copy.jsonb(&row.services_json);
    copy.joined_text_array(&row.diagnoses);
    copy.joined_text_array(&row.unit_codes);
    copy.int4_array(
        row.unit_counts
            .split(',')
            .filter(|count| !count.is_empty())
            .map(|count| count.parse().unwrap_or(i32::MAX))
            .collect::<Vec<i32>>()
            .into_iter(),
    );
    copy.int4(row.total_units);
    copy.int8(row.last_sequence);
    copy.bytea(&row.log_events);
}

/// Deletes the rows of `table` that belong to the given sessions: the stored rows of sessions a
/// batch continues (its COPY replaces them), the lines of claims it re-derives (an amended visit
/// may have fewer lines).
pub(super) async fn delete_session_rows(
    connection: &mut PgConnection,
    schema: &str,
    table: &str,
    keys: impl Iterator<Item = SessionKey>,
    operation: &'static str,
) -> Result<(), ProjectorError> {
    let (chains, sessions): (Vec<Uuid>, Vec<Uuid>) =
        keys.map(|key| (key.chain, key.session)).unzip();
    if chains.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "DELETE FROM {schema}.{table} t \
         USING UNNEST($1::uuid[], $2::uuid[]) AS k(chain_id, session_id) \
         WHERE t.chain_id = k.chain_id AND t.session_id = k.session_id"
    ))
    .bind(chains)
    .bind(sessions)
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db(operation))?;
    Ok(())
}
