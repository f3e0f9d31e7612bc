//! The read-model schemas as wholes: the rebuild's lock, creating the schema a rebuild fills,
//! swapping it in (all of it, or one chain's rows), each table's digest, and the probe `/ready`
//! asks.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::{LIVE_SCHEMA, REBUILD_SCHEMA};
use crate::error::ProjectorError;

/// Every read-model table with its primary key (the dump order).
pub const READ_MODEL_TABLES: [(&str, &str); 18] = [
    ("sessions", "chain_id, session_id"),
    ("claims", "chain_id, session_id, payer_id"),
    ("claim_lines", "chain_id, session_id, payer_id, line_number"),
    ("therapist_day_units", "chain_id, therapist_id, day"),
    ("clinic_code_day_units", "chain_id, clinic_id, code, day"),
    ("payer_rules", "chain_id, payer_id, version"),
    ("clinics", "chain_id, clinic_id"),
    ("therapists", "chain_id, therapist_id"),
    ("payers", "chain_id, payer_id"),
    ("patients", "chain_id, patient_id"),
    ("coverages", "chain_id, coverage_id"),
    ("referrals", "chain_id, referral_id"),
    ("claim_ids", "chain_id, claim_id"),
    (
        "claim_line_outcomes",
        "chain_id, session_id, payer_id, line_number",
    ),
    (
        "reimbursement_monthly",
        "chain_id, month, clinic_id, payer_id, code",
    ),
    (
        "denial_reasons_monthly",
        "chain_id, month, clinic_id, payer_id, code, group_code, reason_code",
    ),
    // Sums of reimbursement_monthly, written with it by the projector (migrations 0010, 0012).
    (
        "reimbursement_monthly_chain",
        "chain_id, month, payer_id, code",
    ),
    // Sums of reimbursement_monthly, written with it by the projector (migrations 0011, 0012).
    ("reimbursement_monthly_clinic", "chain_id, month, clinic_id"),
];

/// The advisory lock key rebuilds hold (an arbitrary constant: "CLRB").
const REBUILD_LOCK_KEY: i64 = 0x434c_5242;

/// Takes the rebuild lock on `connection`, for as long as its session lasts; `false` when another
/// rebuild holds it.
pub(crate) async fn try_rebuild_lock(
    connection: &mut PgConnection,
) -> Result<bool, ProjectorError> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(REBUILD_LOCK_KEY)
        .persistent(false)
        .fetch_one(connection)
        .await
        .map_err(ProjectorError::db("taking the rebuild lock"))
}

/// Releases the rebuild lock. Closing the connection alone releases it only once its backend has
/// exited, which the server does after the client has gone, so a rebuild started right after
/// could still find it held.
pub(crate) async fn release_rebuild_lock(connection: &mut PgConnection) {
    let _ = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
        .bind(REBUILD_LOCK_KEY)
        .persistent(false)
        .fetch_one(connection)
        .await;
}

/// An empty rebuild schema, with no checkpoint.
pub(crate) async fn create_rebuild_schema(pool: &PgPool) -> Result<(), ProjectorError> {
    for statement in [
        format!("DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE"),
        format!("DELETE FROM public.projector_checkpoints WHERE projection = '{REBUILD_SCHEMA}'"),
        format!("SELECT claimledger_create_read_models('{REBUILD_SCHEMA}')"),
    ] {
        sqlx::query(&statement)
            .persistent(false)
            .execute(pool)
            .await
            .map_err(ProjectorError::db("creating the rebuild schema"))?;
    }
    Ok(())
}

/// The rebuild schema becomes the live one, in the swap's transaction; the old one is dropped.
pub(crate) async fn swap_in_rebuild(connection: &mut PgConnection) -> Result<(), ProjectorError> {
    for statement in [
        format!("ALTER SCHEMA {LIVE_SCHEMA} RENAME TO {LIVE_SCHEMA}_retired"),
        format!("ALTER SCHEMA {REBUILD_SCHEMA} RENAME TO {LIVE_SCHEMA}"),
        format!("DROP SCHEMA {LIVE_SCHEMA}_retired CASCADE"),
    ] {
        sqlx::query(&statement)
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db("swapping the schemas"))?;
    }
    Ok(())
}

/// `chain`'s rows in every live table are replaced by the rebuild schema's, which is then dropped,
/// in the swap's transaction.
pub(crate) async fn swap_in_chain(
    connection: &mut PgConnection,
    chain: Uuid,
) -> Result<(), ProjectorError> {
    for (table, _) in READ_MODEL_TABLES {
        sqlx::query(&format!(
            "DELETE FROM {LIVE_SCHEMA}.{table} WHERE chain_id = $1"
        ))
        .bind(chain)
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("removing the chain's live rows"))?;
        sqlx::query(&format!(
            "INSERT INTO {LIVE_SCHEMA}.{table} SELECT * FROM {REBUILD_SCHEMA}.{table}"
        ))
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("copying the chain's rebuilt rows"))?;
    }
    sqlx::query(&format!("DROP SCHEMA {REBUILD_SCHEMA} CASCADE"))
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("dropping the rebuild schema"))?;
    Ok(())
}

/// Removes the rebuild schema's checkpoint, in the swap's transaction.
pub(crate) async fn forget_rebuild_checkpoint(
    connection: &mut PgConnection,
) -> Result<(), ProjectorError> {
    sqlx::query("DELETE FROM public.projector_checkpoints WHERE projection = $1")
        .bind(REBUILD_SCHEMA)
        .persistent(false)
        .execute(connection)
        .await
        .map_err(ProjectorError::db("removing the rebuild checkpoint"))?;
    Ok(())
}

/// One table's row count and the MD5 of its rows' text forms in `order`, limited to `chain`.
pub(crate) async fn table_digest(
    pool: &PgPool,
    schema: &str,
    table: &str,
    order: &str,
    chain: Option<Uuid>,
) -> Result<(i64, String), ProjectorError> {
    sqlx::query_as(&format!(
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) \
         FROM {schema}.{table} t WHERE $1::uuid IS NULL OR t.chain_id = $1"
    ))
    .bind(chain)
    .persistent(false)
    .fetch_one(pool)
    .await
    .map_err(ProjectorError::db("digesting a read model"))
}

/// Whether PostgreSQL answers a query.
pub(crate) async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .persistent(false)
        .fetch_one(pool)
        .await
        .map(drop)
}
