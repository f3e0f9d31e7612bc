//! The checkpoint of each target (schema, and chain for a chain-filtered rebuild), and the
//! transaction a batch and its checkpoint commit in.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectorError;

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
