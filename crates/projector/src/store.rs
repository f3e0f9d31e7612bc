//! The projector's PostgreSQL statements: the checkpoint, reading back stored state, and the bulk
//! writes of one batch.
//!
//! One module per group of tables (`sessions`, `claims`, `totals`, `rules`, `lifecycle`,
//! `rollups`, `reference`, `parked`, `checkpoint`), each table's columns listed once in `tables`;
//! [`write_changes`] is the one place that orders a batch's writes.
//!
//! Session rows, and the claims and lines of sessions completed for the first time, are written
//! with one binary `COPY` per table: the cheapest way into PostgreSQL, and during a replay almost
//! every row. A session the batch continues has its stored row deleted first (one statement).
//! Rows that are added to or keep columns of their own (re-derived claims, totals) are written with
//! one `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT` per table. Never one statement per row.
//! Statements name the target schema explicitly and are not kept as named prepared statements
//! (`persistent(false)`), because a rebuild renames schemas under a live connection and a cached
//! plan must never outlive the table it was planned for.

use claimledger_derive::hashing::HashSet;
use claimledger_derive::keys::SessionKey;
use claimledger_derive::rows::{BatchChanges, ClaimRow};
use sqlx::PgConnection;

use crate::error::ProjectorError;

mod binary_copy;
mod checkpoint;
mod claims;
mod directory;
mod drafts;
mod lifecycle;
mod parked;
mod reference;
mod rollups;
mod rules;
mod schemas;
mod sessions;
mod tables;
mod totals;

use binary_copy::BinaryCopy;
pub(crate) use checkpoint::{
    Target, begin_batch, ensure_checkpoint, lock_checkpoint, read_checkpoint, set_checkpoint,
};
use claims::{encode_claim, upsert_claim_ids, upsert_claims};
pub(crate) use directory::load_directory;
pub(crate) use drafts::load_drafts;
pub(crate) use parked::write_parked;
pub(crate) use rules::load_rules;
pub use schemas::READ_MODEL_TABLES;
pub(crate) use schemas::{
    create_rebuild_schema, forget_rebuild_checkpoint, ping, release_rebuild_lock, swap_in_chain,
    swap_in_rebuild, table_digest, try_rebuild_lock,
};
pub(crate) use sessions::load_sessions;
use sessions::{delete_session_rows, encode_session, upsert_sessions};
use tables::{CLAIM_IDS, CLAIM_LINES, CLAIMS, SESSIONS};

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
    totals::write_totals(connection, schema, changes).await?;
    lifecycle::write_claim_lifecycles(connection, schema, changes).await?;
    rules::write_rules(connection, schema, &changes.rules).await?;
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
    let streams = [
        (&SESSIONS, copy.sessions, "copying new sessions"),
        (&CLAIMS, copy.claims, "copying new claims"),
        (&CLAIM_LINES, copy.lines, "copying new claim lines"),
        (&CLAIM_IDS, copy.ids, "copying new claim ids"),
    ];
    for (table, rows, operation) in streams {
        copy_in(connection, &table.copy(schema), rows, operation).await?;
    }
    Ok(())
}
