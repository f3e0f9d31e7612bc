//! The projector's PostgreSQL statements: the checkpoint, reading back stored state, and the bulk
//! writes of one batch.
//!
//! Session rows, and the claims and lines of sessions completed for the first time, are written
//! with one binary `COPY` per table: the cheapest way into PostgreSQL, and during a replay almost
//! every row. A session the batch continues has its stored row deleted first (one statement).
//! Rows that are added to or keep columns of their own (re-derived claims, totals) are written with
//! one `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT` per table. Never one statement per row.
//! Statements name the target schema explicitly and are not kept as named prepared statements
//! (`persistent(false)`), because a rebuild renames schemas under a live connection and a cached
//! plan must never outlive the table it was planned for.

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_billing::ReferenceData;
use claimledger_events::rules::RulesChanged;
use claimledger_events::{ClaimId, EpochDay, PayerId, SessionId, decode};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use claimledger_derive::hashing::{HashMap, HashSet};
use claimledger_derive::keys::SessionKey;
use claimledger_derive::rows::{BatchChanges, ClaimRow, Footprint, SessionRow, StoredSession};
use claimledger_derive::rules::LogRules;
use claimledger_events::error_chain;

use crate::error::ProjectorError;

mod binary_copy;
mod directory;
mod drafts;
mod lifecycle;
mod parked;
mod reference;
mod rollups;

use binary_copy::BinaryCopy;
pub(crate) use directory::load_directory;
pub(crate) use drafts::load_drafts;
pub(crate) use parked::write_parked;

/// How a batch writes the rows it takes for new: every session row (a session the batch continues
/// replaces its stored row, deleted first in the same transaction), and the claims of sessions
/// never completed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewRows {
    /// COPY them straight into the tables, from [`NewRowsCopy`] streams. If a row taken for new
    /// exists after all (a log that schedules a session twice), the COPY fails with
    /// [`ProjectorError::ExistingRow`], and the batch is applied again with [`NewRows::Upsert`].
    Copy,
    /// Upsert them like every other row.
    Upsert,
}

impl NewRows {
    /// The COPY streams `changes` needs written this way, if any. A pipelined batch encodes them
    /// while it folds, so that its write only sends bytes.
    pub(crate) fn encode(self, changes: &BatchChanges) -> Option<NewRowsCopy> {
        match self {
            NewRows::Copy => Some(NewRowsCopy::encode(changes)),
            NewRows::Upsert => None,
        }
    }
}

/// The COPY streams of a batch's new rows.
#[derive(Debug)]
pub(crate) struct NewRowsCopy {
    sessions: BinaryCopy,
    claims: BinaryCopy,
    lines: BinaryCopy,
    ids: BinaryCopy,
}

impl NewRowsCopy {
    /// Encodes the rows of `changes` that are written with COPY.
    pub(crate) fn encode(changes: &BatchChanges) -> Self {
        let new_claims = ClaimRows::of(changes).new;
        let claim_bytes = new_claims
            .iter()
            .map(|claim| CLAIM_ROW_FIXED_BYTES + claim.findings_json.len() + claim.diagnoses.len())
            .sum();
        let line_count: usize = new_claims.iter().map(|claim| claim.lines.len()).sum();
        let mut claims = BinaryCopy::with_capacity(18, claim_bytes);
        let mut lines = BinaryCopy::with_capacity(10, line_count * LINE_ROW_FIXED_BYTES);
        let mut ids = BinaryCopy::with_capacity(4, new_claims.len() * CLAIM_ID_ROW_BYTES);
        for claim in new_claims {
            encode_claim(claim, &mut claims, &mut lines, &mut ids);
        }
        // Every session row, stored or not: a session row is the projector's alone, so replacing
        // a stored one is a DELETE and a COPY, which costs PostgreSQL less than an upsert of the
        // same row from arrays (over a 1M-visit replay, where about one session in nine spans a
        // batch boundary: a 1.5 s DELETE and about 4.5 s more COPY, against a 7.2 s upsert).
        let session_bytes = changes
            .sessions
            .iter()
            .map(|row| {
                SESSION_ROW_FIXED_BYTES
                    + row.log_events.len()
                    + row.services_json.len()
                    + row.diagnoses.len()
                    + row.unit_codes.len()
                    + row.unit_counts.len() * 8
            })
            .sum();
        let mut sessions = BinaryCopy::with_capacity(19, session_bytes);
        for row in &changes.sessions {
            encode_session(row, &mut sessions);
        }
        Self {
            sessions,
            claims,
            lines,
            ids,
        }
    }
}

/// About what a row takes in its COPY stream besides its variable-length text and documents: the
/// field lengths, UUIDs, numbers, short codes and array headers, rounded up. Used only to size the
/// buffers; a row larger than its estimate just grows the buffer.
const SESSION_ROW_FIXED_BYTES: usize = 320;
const CLAIM_ROW_FIXED_BYTES: usize = 360;
const LINE_ROW_FIXED_BYTES: usize = 200;
const CLAIM_ID_ROW_BYTES: usize = 2 + 4 * (4 + 16);

/// A batch's claim rows, split into the new ones (COPYd under [`NewRows::Copy`]) and the ones that
/// replace a stored claim (always upserted: a stored claim has lifecycle columns the derivation
/// must keep). The one place that decides which is which, so that the encoder and the writer never
/// disagree on a row.
struct ClaimRows<'a> {
    new: Vec<&'a ClaimRow>,
    replacing: Vec<&'a ClaimRow>,
}

impl<'a> ClaimRows<'a> {
    fn of(changes: &'a BatchChanges) -> Self {
        // A claim replaces a stored one when its session was completed before this batch.
        let replaced: HashSet<SessionKey> = changes.replaced_claims.iter().copied().collect();
        let (replacing, new) = changes.claims.iter().partition(|claim| {
            replaced.contains(&SessionKey {
                chain: claim.chain,
                session: claim.session,
            })
        });
        Self { new, replacing }
    }
}

const COPYING_SESSIONS: &str = "copying new sessions";
const COPYING_CLAIMS: &str = "copying new claims";
const COPYING_CLAIM_LINES: &str = "copying new claim lines";
const COPYING_CLAIM_IDS: &str = "copying new claim ids";

/// Runs `statement` (a `COPY … FROM STDIN (FORMAT binary)`) with the rows of `copy`; nothing
/// when it holds none.
async fn copy_in(
    connection: &mut PgConnection,
    statement: &str,
    copy: BinaryCopy,
    operation: &'static str,
) -> Result<(), ProjectorError> {
    if copy.rows() == 0 {
        return Ok(());
    }
    let mut sink = connection
        .copy_in_raw(statement)
        .await
        .map_err(copy_error(operation))?;
    if let Err(error) = sink.send(copy.finish()).await {
        // The connection is mid-COPY; abort it so that the transaction can roll back cleanly.
        sink.abort("the projector failed to send a COPY stream")
            .await
            .ok();
        return Err(copy_error(operation)(error));
    }
    sink.finish().await.map_err(copy_error(operation))?;
    Ok(())
}

/// A failed COPY's error. Only a COPY takes rows for new, so only here is a unique violation an
/// existing row.
fn copy_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectorError {
    move |source| {
        let existing = source
            .as_database_error()
            .is_some_and(|error| error.code().as_deref() == Some(UNIQUE_VIOLATION));
        if existing {
            ProjectorError::ExistingRow { operation, source }
        } else {
            ProjectorError::db(operation)(source)
        }
    }
}

/// SQLSTATE 23505.
const UNIQUE_VIOLATION: &str = "23505";

/// Which tables and which checkpoint a projector instance owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The schema of the read-model tables.
    pub schema: String,
    /// `None` for the whole log; a chain for a chain-filtered rebuild.
    pub chain: Option<Uuid>,
}

/// Begins a batch's transaction. Its commit does not wait for the WAL flush: a batch lost in a
/// database crash loses its rows and its checkpoint together, and the projector simply applies it
/// again.
pub(crate) async fn begin_batch(
    connection: &mut PgConnection,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, ProjectorError> {
    let mut transaction = sqlx::Connection::begin(connection)
        .await
        .map_err(ProjectorError::db("beginning a batch"))?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .persistent(false)
        .execute(&mut *transaction)
        .await
        .map_err(ProjectorError::db("beginning a batch"))?;
    Ok(transaction)
}

/// Creates the target's checkpoint row at 0 if it does not exist.
pub(crate) async fn ensure_checkpoint(
    connection: &mut PgConnection,
    target: &Target,
) -> Result<(), ProjectorError> {
    sqlx::query(
        "INSERT INTO public.projector_checkpoints (projection, chain_id, last_sequence) \
         VALUES ($1, $2, 0) ON CONFLICT (projection, chain_id) DO NOTHING",
    )
    .bind(&target.schema)
    .bind(target.chain)
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("creating the checkpoint"))?;
    Ok(())
}

/// Reads the target's checkpoint and locks its row until the transaction ends, so two writers of
/// one target (a projector and a rebuild's swap) take turns.
pub(crate) async fn lock_checkpoint(
    connection: &mut PgConnection,
    target: &Target,
) -> Result<u64, ProjectorError> {
    ensure_checkpoint(connection, target).await?;
    let sequence: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM public.projector_checkpoints \
         WHERE projection = $1 AND chain_id IS NOT DISTINCT FROM $2 FOR UPDATE",
    )
    .bind(&target.schema)
    .bind(target.chain)
    .persistent(false)
    .fetch_one(connection)
    .await
    .map_err(ProjectorError::db("locking the checkpoint"))?;
    Ok(u64::try_from(sequence).unwrap_or(0))
}

/// Reads the target's checkpoint without locking it (0 when it has none).
pub(crate) async fn read_checkpoint(pool: &PgPool, target: &Target) -> Result<u64, ProjectorError> {
    let sequence: Option<i64> = sqlx::query_scalar(
        "SELECT last_sequence FROM public.projector_checkpoints \
         WHERE projection = $1 AND chain_id IS NOT DISTINCT FROM $2",
    )
    .bind(&target.schema)
    .bind(target.chain)
    .persistent(false)
    .fetch_optional(pool)
    .await
    .map_err(ProjectorError::db("reading the checkpoint"))?;
    Ok(sequence
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0))
}

/// Moves the target's checkpoint (its row is locked by [`lock_checkpoint`]).
pub(crate) async fn set_checkpoint(
    connection: &mut PgConnection,
    target: &Target,
    sequence: u64,
) -> Result<(), ProjectorError> {
    sqlx::query(
        "UPDATE public.projector_checkpoints SET last_sequence = $3, updated_at = now() \
         WHERE projection = $1 AND chain_id IS NOT DISTINCT FROM $2",
    )
    .bind(&target.schema)
    .bind(target.chain)
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("moving the checkpoint"))?;
    Ok(())
}

/// Rebuilds the in-memory rule book from the schema's `payer_rules` rows, in log order.
pub(crate) async fn load_rules(
    pool: &PgPool,
    schema: &str,
    reference: &ReferenceData,
) -> Result<LogRules, ProjectorError> {
    let rows: Vec<(Uuid, Uuid, i32, NaiveDate, String, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT chain_id, payer_id, version, effective_from, rules_toml, content_sha256 \
         FROM {schema}.payer_rules ORDER BY sequence, payer_id, version"
    ))
    .persistent(false)
    .fetch_all(pool)
    .await
    .map_err(ProjectorError::db("reading payer rules"))?;
    let mut rules = LogRules::new(reference.clone());
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    for (chain, payer, version, effective_from, rules_toml, content_sha256) in rows {
        let changed = RulesChanged {
            payer: PayerId::from(payer),
            version: u32::try_from(version).unwrap_or(0),
            effective_from: EpochDay(
                i32::try_from((effective_from - epoch).num_days()).unwrap_or(i32::MAX),
            ),
            rules_toml,
            content_sha256: content_sha256.try_into().unwrap_or([0; 32]),
        };
        // These rows were validated when their commit was applied. A row that no longer parses
        // (the payer-rules validation changed since) is reported and left out rather than
        // stopping the projector; a rebuild re-derives the affected claims.
        match rules.prepare(&changed) {
            Ok(prepared) => rules.insert(chain, prepared),
            Err(error) => tracing::error!(
                chain_id = %chain,
                payer_id = %payer,
                version,
                error.message = %error_chain(&error),
                "stored payer rules no longer parse; claims will not use them"
            ),
        }
    }
    Ok(rules)
}

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

/// Writes one batch's changes: one statement per table. `new_rows` holds the new rows encoded for
/// COPY (see [`NewRows`]); without it every row is upserted.
pub(crate) async fn write_changes(
    connection: &mut PgConnection,
    schema: &str,
    changes: &BatchChanges,
    new_rows: Option<NewRowsCopy>,
) -> Result<(), ProjectorError> {
    let claims: Vec<&ClaimRow> = match new_rows {
        Some(copy) => {
            let continued = changes.sessions.iter().filter(|row| row.stored);
            delete_session_rows(
                connection,
                schema,
                "sessions",
                continued.map(|row| SessionKey {
                    chain: row.chain,
                    session: row.session,
                }),
                "replacing stored sessions",
            )
            .await?;
            copy_new_rows(connection, schema, copy).await?;
            ClaimRows::of(changes).replacing
        }
        None => {
            upsert_sessions(connection, schema, &changes.sessions).await?;
            changes.claims.iter().collect()
        }
    };
    delete_session_rows(
        connection,
        schema,
        "claim_lines",
        changes.replaced_claims.iter().copied(),
        "replacing claim lines",
    )
    .await?;
    upsert_claims(connection, schema, &claims).await?;
    upsert_claim_ids(connection, schema, &claims).await?;
    write_totals(connection, schema, changes).await?;
    lifecycle::write_claim_lifecycles(connection, schema, changes).await?;
    write_rules(connection, schema, changes).await?;
    reference::write_reference(connection, schema, &changes.reference).await?;
    write_parked(connection, &changes.parked).await?;
    Ok(())
}

/// COPYs a batch's new rows: sessions, then claims, their lines and their log ids.
async fn copy_new_rows(
    connection: &mut PgConnection,
    schema: &str,
    copy: NewRowsCopy,
) -> Result<(), ProjectorError> {
    copy_in(
        connection,
        &format!(
            "COPY {schema}.sessions (chain_id, session_id, clinic_id, therapist_id, patient_id, \
                 payer_id, status, scheduled_start, date_of_service, planned_minutes, \
                 service_minutes, modality_minutes, services, diagnoses, unit_codes, unit_counts, \
                 total_units, last_sequence, log_events) FROM STDIN (FORMAT binary)"
        ),
        copy.sessions,
        COPYING_SESSIONS,
    )
    .await?;
    copy_in(
        connection,
        &format!(
            "COPY {schema}.claims (chain_id, session_id, payer_id, clinic_id, therapist_id, \
                 patient_id, date_of_service, payer_key, rules_version, rules_sha256, \
                 place_of_service, billing_npi, tax_id, diagnoses, total_charge_cents, findings, \
                 derivation_error, last_sequence) FROM STDIN (FORMAT binary)"
        ),
        copy.claims,
        COPYING_CLAIMS,
    )
    .await?;
    copy_in(
        connection,
        &format!(
            "COPY {schema}.claim_lines (chain_id, session_id, payer_id, line_number, code, \
                 modifiers, diagnosis_pointers, units, charge_cents, rendering_npi) \
             FROM STDIN (FORMAT binary)"
        ),
        copy.lines,
        COPYING_CLAIM_LINES,
    )
    .await?;
    copy_in(
        connection,
        &format!(
            "COPY {schema}.claim_ids (chain_id, claim_id, session_id, payer_id) \
             FROM STDIN (FORMAT binary)"
        ),
        copy.ids,
        COPYING_CLAIM_IDS,
    )
    .await
}

async fn upsert_sessions(
    connection: &mut PgConnection,
    schema: &str,
    rows: &[SessionRow],
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&SessionRow) -> Uuid| rows.iter().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&SessionRow) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<_>>();
    let statuses: Vec<&str> = rows.iter().map(|row| row.status).collect();
    let starts: Vec<Option<DateTime<Utc>>> = rows.iter().map(|row| row.scheduled_start).collect();
    let days: Vec<Option<NaiveDate>> = rows.iter().map(|row| row.date_of_service).collect();
    let planned: Vec<Option<i32>> = rows.iter().map(|row| row.planned_minutes).collect();
    let service_minutes: Vec<i32> = rows.iter().map(|row| row.service_minutes).collect();
    let modality_minutes: Vec<i32> = rows.iter().map(|row| row.modality_minutes).collect();
    let services: Vec<&str> = rows.iter().map(|row| row.services_json.as_str()).collect();
    let diagnoses: Vec<&str> = rows.iter().map(|row| row.diagnoses.as_str()).collect();
    let unit_codes: Vec<&str> = rows.iter().map(|row| row.unit_codes.as_str()).collect();
    let unit_counts: Vec<&str> = rows.iter().map(|row| row.unit_counts.as_str()).collect();
    let total_units: Vec<i32> = rows.iter().map(|row| row.total_units).collect();
    let sequences: Vec<i64> = rows.iter().map(|row| row.last_sequence).collect();
    let log_events: Vec<&[u8]> = rows.iter().map(|row| row.log_events.as_slice()).collect();
    sqlx::query(&format!(
        "INSERT INTO {schema}.sessions (chain_id, session_id, clinic_id, therapist_id, \
             patient_id, payer_id, status, scheduled_start, date_of_service, planned_minutes, \
             service_minutes, modality_minutes, services, diagnoses, unit_codes, unit_counts, \
             total_units, last_sequence, log_events) \
         SELECT chain_id, session_id, clinic_id, therapist_id, patient_id, payer_id, status, \
             scheduled_start, date_of_service, planned_minutes, service_minutes, \
             modality_minutes, services::jsonb, string_to_array(diagnoses, ','), \
             string_to_array(unit_codes, ','), string_to_array(unit_counts, ',')::integer[], \
             total_units, last_sequence, log_events \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], \
             $7::text[], $8::timestamptz[], $9::date[], $10::int4[], $11::int4[], $12::int4[], \
             $13::text[], $14::text[], $15::text[], $16::text[], $17::int4[], $18::int8[], \
             $19::bytea[]) \
           AS u(chain_id, session_id, clinic_id, therapist_id, patient_id, payer_id, status, \
             scheduled_start, date_of_service, planned_minutes, service_minutes, \
             modality_minutes, services, diagnoses, unit_codes, unit_counts, total_units, \
             last_sequence, log_events) \
         ON CONFLICT (chain_id, session_id) DO UPDATE SET \
             clinic_id = EXCLUDED.clinic_id, therapist_id = EXCLUDED.therapist_id, \
             patient_id = EXCLUDED.patient_id, payer_id = EXCLUDED.payer_id, \
             status = EXCLUDED.status, scheduled_start = EXCLUDED.scheduled_start, \
             date_of_service = EXCLUDED.date_of_service, \
             planned_minutes = EXCLUDED.planned_minutes, \
             service_minutes = EXCLUDED.service_minutes, \
             modality_minutes = EXCLUDED.modality_minutes, services = EXCLUDED.services, \
             diagnoses = EXCLUDED.diagnoses, unit_codes = EXCLUDED.unit_codes, \
             unit_counts = EXCLUDED.unit_counts, total_units = EXCLUDED.total_units, \
             last_sequence = EXCLUDED.last_sequence, log_events = EXCLUDED.log_events"
    ))
    .bind(column(|row| row.chain))
    .bind(column(|row| row.session))
    .bind(column(|row| row.clinic))
    .bind(optional(|row| row.therapist))
    .bind(optional(|row| row.patient))
    .bind(optional(|row| row.payer))
    .bind(statuses)
    .bind(starts)
    .bind(days)
    .bind(planned)
    .bind(service_minutes)
    .bind(modality_minutes)
    .bind(services)
    .bind(diagnoses)
    .bind(unit_codes)
    .bind(unit_counts)
    .bind(total_units)
    .bind(sequences)
    .bind(log_events)
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing sessions"))?;
    Ok(())
}

/// Appends a session row to the sessions COPY stream.
fn encode_session(row: &SessionRow, copy: &mut BinaryCopy) {
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

/// Appends a claim to the claims COPY stream, its lines to the lines stream and its log id to
/// the ids stream.
fn encode_claim(
    claim: &ClaimRow,
    claims: &mut BinaryCopy,
    lines: &mut BinaryCopy,
    ids: &mut BinaryCopy,
) {
    ids.row();
    ids.uuid(claim.chain);
    ids.uuid(claim_id(claim));
    ids.uuid(claim.session);
    ids.uuid(claim.payer);
    claims.row();
    claims.uuid(claim.chain);
    claims.uuid(claim.session);
    claims.uuid(claim.payer);
    claims.uuid(claim.clinic);
    claims.uuid(claim.therapist);
    claims.uuid(claim.patient);
    claims.optional_date(claim.date_of_service);
    claims.optional_text(claim.payer_key.as_deref());
    claims.optional_int4(claim.rules_version);
    claims.optional_bytea(claim.rules_sha256.as_deref());
    claims.optional_text(claim.place_of_service.as_deref());
    claims.optional_text(claim.billing_npi.as_deref());
    claims.optional_text(claim.tax_id.as_deref());
    claims.joined_text_array(&claim.diagnoses);
    claims.int8(claim.total_charge_cents);
    claims.jsonb(&claim.findings_json);
    claims.optional_text(claim.derivation_error.as_deref());
    claims.int8(claim.last_sequence);
    for (index, line) in claim.lines.iter().enumerate() {
        lines.row();
        lines.uuid(claim.chain);
        lines.uuid(claim.session);
        lines.uuid(claim.payer);
        lines.int2(i16::try_from(index + 1).unwrap_or(i16::MAX));
        lines.text(&line.code);
        lines.joined_text_array(&line.modifiers);
        lines.text(&line.diagnosis_pointers);
        lines.int4(line.units);
        lines.int8(line.charge_cents);
        lines.text(&line.rendering_npi);
    }
}

/// The claim's id on the log: the claims service names a claim by its session and payer.
fn claim_id(claim: &ClaimRow) -> Uuid {
    ClaimId::for_session_and_payer(SessionId::from(claim.session), PayerId::from(claim.payer))
        .as_uuid()
}

/// Records the log ids of claims that may already have them (re-derived claims, and every claim
/// of a batch applied with upserts).
async fn upsert_claim_ids(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[&ClaimRow],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    let chains: Vec<Uuid> = claims.iter().map(|claim| claim.chain).collect();
    let ids: Vec<Uuid> = claims.iter().map(|claim| claim_id(claim)).collect();
    let sessions: Vec<Uuid> = claims.iter().map(|claim| claim.session).collect();
    let payers: Vec<Uuid> = claims.iter().map(|claim| claim.payer).collect();
    sqlx::query(&format!(
        "INSERT INTO {schema}.claim_ids (chain_id, claim_id, session_id, payer_id) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) \
         ON CONFLICT (chain_id, claim_id) DO NOTHING"
    ))
    .bind(chains)
    .bind(ids)
    .bind(sessions)
    .bind(payers)
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing claim ids"))?;
    Ok(())
}

/// Deletes the rows of `table` that belong to the given sessions: the stored rows of sessions a
/// batch continues (its COPY replaces them), the lines of claims it re-derives (an amended visit
/// may have fewer lines).
async fn delete_session_rows(
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

/// Upserts claims that may be stored, then their lines.
async fn upsert_claims(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[&ClaimRow],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    let uuids = |f: fn(&ClaimRow) -> Uuid| claims.iter().map(|claim| f(claim)).collect::<Vec<_>>();
    let texts = |f: fn(&ClaimRow) -> Option<&str>| {
        claims
            .iter()
            .map(|claim| f(claim))
            .collect::<Vec<Option<&str>>>()
    };
    let days: Vec<Option<NaiveDate>> = claims.iter().map(|claim| claim.date_of_service).collect();
    let versions: Vec<Option<i32>> = claims.iter().map(|claim| claim.rules_version).collect();
    let hashes: Vec<Option<&[u8]>> = claims
        .iter()
        .map(|claim| claim.rules_sha256.as_deref())
        .collect();
    let diagnoses: Vec<&str> = claims
        .iter()
        .map(|claim| claim.diagnoses.as_str())
        .collect();
    let totals: Vec<i64> = claims
        .iter()
        .map(|claim| claim.total_charge_cents)
        .collect();
    let findings: Vec<&str> = claims
        .iter()
        .map(|claim| claim.findings_json.as_str())
        .collect();
    let sequences: Vec<i64> = claims.iter().map(|claim| claim.last_sequence).collect();
    sqlx::query(&format!(
        "INSERT INTO {schema}.claims (chain_id, session_id, payer_id, clinic_id, therapist_id, \
             patient_id, date_of_service, payer_key, rules_version, rules_sha256, \
             place_of_service, billing_npi, tax_id, diagnoses, total_charge_cents, findings, \
             derivation_error, last_sequence) \
         SELECT chain_id, session_id, payer_id, clinic_id, therapist_id, patient_id, \
             date_of_service, payer_key, rules_version, rules_sha256, place_of_service, \
             billing_npi, tax_id, string_to_array(diagnoses, ','), total_charge_cents, \
             findings::jsonb, derivation_error, last_sequence \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], \
             $7::date[], $8::text[], $9::int4[], $10::bytea[], $11::text[], $12::text[], \
             $13::text[], $14::text[], $15::int8[], $16::text[], $17::text[], $18::int8[]) \
           AS u(chain_id, session_id, payer_id, clinic_id, therapist_id, patient_id, \
             date_of_service, payer_key, rules_version, rules_sha256, place_of_service, \
             billing_npi, tax_id, diagnoses, total_charge_cents, findings, derivation_error, \
             last_sequence) \
         ON CONFLICT (chain_id, session_id, payer_id) DO UPDATE SET \
             clinic_id = EXCLUDED.clinic_id, therapist_id = EXCLUDED.therapist_id, \
             patient_id = EXCLUDED.patient_id, date_of_service = EXCLUDED.date_of_service, \
             payer_key = EXCLUDED.payer_key, rules_version = EXCLUDED.rules_version, \
             rules_sha256 = EXCLUDED.rules_sha256, place_of_service = EXCLUDED.place_of_service, \
             billing_npi = EXCLUDED.billing_npi, tax_id = EXCLUDED.tax_id, \
             diagnoses = EXCLUDED.diagnoses, total_charge_cents = EXCLUDED.total_charge_cents, \
             findings = EXCLUDED.findings, derivation_error = EXCLUDED.derivation_error, \
             last_sequence = EXCLUDED.last_sequence"
    ))
    .bind(uuids(|claim| claim.chain))
    .bind(uuids(|claim| claim.session))
    .bind(uuids(|claim| claim.payer))
    .bind(uuids(|claim| claim.clinic))
    .bind(uuids(|claim| claim.therapist))
    .bind(uuids(|claim| claim.patient))
    .bind(days)
    .bind(texts(|claim| claim.payer_key.as_deref()))
    .bind(versions)
    .bind(hashes)
    .bind(texts(|claim| claim.place_of_service.as_deref()))
    .bind(texts(|claim| claim.billing_npi.as_deref()))
    .bind(texts(|claim| claim.tax_id.as_deref()))
    .bind(diagnoses)
    .bind(totals)
    .bind(findings)
    .bind(texts(|claim| claim.derivation_error.as_deref()))
    .bind(sequences)
    .persistent(false)
    .execute(&mut *connection)
    .await
    .map_err(ProjectorError::db("writing claims"))?;

    let line_count: usize = claims.iter().map(|claim| claim.lines.len()).sum();
    if line_count == 0 {
        return Ok(());
    }
    let mut chains = Vec::with_capacity(line_count);
    let mut sessions = Vec::with_capacity(line_count);
    let mut payers = Vec::with_capacity(line_count);
    let mut numbers: Vec<i16> = Vec::with_capacity(line_count);
    let mut codes: Vec<&str> = Vec::with_capacity(line_count);
    let mut modifiers: Vec<&str> = Vec::with_capacity(line_count);
    let mut pointers: Vec<&str> = Vec::with_capacity(line_count);
    let mut units: Vec<i32> = Vec::with_capacity(line_count);
    let mut charges: Vec<i64> = Vec::with_capacity(line_count);
    let mut npis: Vec<&str> = Vec::with_capacity(line_count);
    for claim in claims {
        for (index, line) in claim.lines.iter().enumerate() {
            chains.push(claim.chain);
            sessions.push(claim.session);
            payers.push(claim.payer);
            numbers.push(i16::try_from(index + 1).unwrap_or(i16::MAX));
            codes.push(line.code.as_str());
            modifiers.push(line.modifiers.as_str());
            pointers.push(line.diagnosis_pointers.as_str());
            units.push(line.units);
            charges.push(line.charge_cents);
            npis.push(line.rendering_npi.as_str());
        }
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.claim_lines (chain_id, session_id, payer_id, line_number, code, \
             modifiers, diagnosis_pointers, units, charge_cents, rendering_npi) \
         SELECT chain_id, session_id, payer_id, line_number, code, \
             string_to_array(modifiers, ','), diagnosis_pointers, units, charge_cents, \
             rendering_npi \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int2[], $5::text[], $6::text[], \
             $7::text[], $8::int4[], $9::int8[], $10::text[]) \
           AS u(chain_id, session_id, payer_id, line_number, code, modifiers, \
             diagnosis_pointers, units, charge_cents, rendering_npi)"
    ))
    .bind(chains)
    .bind(sessions)
    .bind(payers)
    .bind(numbers)
    .bind(codes)
    .bind(modifiers)
    .bind(pointers)
    .bind(units)
    .bind(charges)
    .bind(npis)
    .persistent(false)
    .execute(&mut *connection)
    .await
    .map_err(ProjectorError::db("writing claim lines"))?;
    Ok(())
}

/// Adds the batch's unit deltas, then removes totals that fell to zero so that the tables do not
/// depend on how the log was cut into batches. Only a delta that is not positive can leave a
/// total at zero, so only those keys are checked: during a replay that is almost none.
async fn write_totals(
    connection: &mut PgConnection,
    schema: &str,
    changes: &BatchChanges,
) -> Result<(), ProjectorError> {
    if !changes.therapist_day.is_empty() {
        let mut chains = Vec::new();
        let mut therapists = Vec::new();
        let mut days = Vec::new();
        let mut units = Vec::new();
        for ((chain, therapist, day), delta) in &changes.therapist_day {
            chains.push(*chain);
            therapists.push(*therapist);
            days.push(*day);
            units.push(*delta);
        }
        sqlx::query(&format!(
            "INSERT INTO {schema}.therapist_day_units AS t (chain_id, therapist_id, day, units) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::date[], $4::int8[]) \
             ON CONFLICT (chain_id, therapist_id, day) \
             DO UPDATE SET units = t.units + EXCLUDED.units"
        ))
        .bind(&chains)
        .bind(&therapists)
        .bind(&days)
        .bind(&units)
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("writing therapist day units"))?;
        let shrunk = not_positive(&units);
        if !shrunk.is_empty() {
            // A separate statement: sub-statements of one statement share a snapshot, so a
            // DELETE in the upsert's own WITH would not see the totals it just brought to zero.
            sqlx::query(&format!(
                "DELETE FROM {schema}.therapist_day_units t \
                 USING UNNEST($1::uuid[], $2::uuid[], $3::date[]) \
                   AS d(chain_id, therapist_id, day) \
                 WHERE t.units = 0 AND t.chain_id = d.chain_id \
                   AND t.therapist_id = d.therapist_id AND t.day = d.day"
            ))
            .bind(pick(&chains, &shrunk))
            .bind(pick(&therapists, &shrunk))
            .bind(pick(&days, &shrunk))
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db(
                "deleting therapist day units that fell to zero",
            ))?;
        }
    }
    if !changes.clinic_code_day.is_empty() {
        let mut chains = Vec::new();
        let mut clinics = Vec::new();
        let mut codes: Vec<&str> = Vec::new();
        let mut days = Vec::new();
        let mut units = Vec::new();
        for ((chain, clinic, code, day), delta) in &changes.clinic_code_day {
            chains.push(*chain);
            clinics.push(*clinic);
            codes.push(code.as_str());
            days.push(*day);
            units.push(*delta);
        }
        sqlx::query(&format!(
            "INSERT INTO {schema}.clinic_code_day_units AS t \
                 (chain_id, clinic_id, code, day, units) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::date[], $5::int8[]) \
             ON CONFLICT (chain_id, clinic_id, code, day) \
             DO UPDATE SET units = t.units + EXCLUDED.units"
        ))
        .bind(&chains)
        .bind(&clinics)
        .bind(&codes)
        .bind(&days)
        .bind(&units)
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("writing clinic code day units"))?;
        let shrunk = not_positive(&units);
        if !shrunk.is_empty() {
            sqlx::query(&format!(
                "DELETE FROM {schema}.clinic_code_day_units t \
                 USING UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::date[]) \
                   AS d(chain_id, clinic_id, code, day) \
                 WHERE t.units = 0 AND t.chain_id = d.chain_id AND t.clinic_id = d.clinic_id \
                   AND t.code = d.code AND t.day = d.day"
            ))
            .bind(pick(&chains, &shrunk))
            .bind(pick(&clinics, &shrunk))
            .bind(pick(&codes, &shrunk))
            .bind(pick(&days, &shrunk))
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db(
                "deleting clinic code day units that fell to zero",
            ))?;
        }
    }
    Ok(())
}

/// The indexes of the deltas that can leave a total at zero.
fn not_positive(deltas: &[i64]) -> Vec<usize> {
    (0..deltas.len())
        .filter(|&index| deltas[index] <= 0)
        .collect()
}

/// The values at `indexes`.
fn pick<T: Copy>(values: &[T], indexes: &[usize]) -> Vec<T> {
    indexes.iter().map(|&index| values[index]).collect()
}

async fn write_rules(
    connection: &mut PgConnection,
    schema: &str,
    changes: &BatchChanges,
) -> Result<(), ProjectorError> {
    let rows = &changes.rules;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.payer_rules (chain_id, payer_id, version, payer_key, \
             effective_from, rules_toml, content_sha256, sequence) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::date[], \
             $6::text[], $7::bytea[], $8::int8[]) \
         ON CONFLICT (chain_id, payer_id, version) DO UPDATE SET \
             payer_key = EXCLUDED.payer_key, effective_from = EXCLUDED.effective_from, \
             rules_toml = EXCLUDED.rules_toml, content_sha256 = EXCLUDED.content_sha256, \
             sequence = EXCLUDED.sequence"
    ))
    .bind(rows.iter().map(|row| row.chain).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.payer).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.version).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|row| row.payer_key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| row.effective_from)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| row.rules_toml.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| row.content_sha256.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|row| row.sequence).collect::<Vec<_>>())
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("writing payer rules"))?;
    Ok(())
}
