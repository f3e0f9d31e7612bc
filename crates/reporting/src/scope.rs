//! Every reporting read runs in a read-only transaction under the `claimledger_reader` role with
//! `claimledger.chain_id` set to the caller's chain (both `LOCAL`: they end with the transaction, so
//! a pooled connection never carries one caller's chain into the next).
//!
//! Migration 0008 gives every read-model table with a `chain_id` a row-level security policy for
//! that role, so a query in this transaction sees its chain's rows only, whatever its `WHERE`
//! says. The queries still filter on the chain themselves: that is what lets the planner use the
//! keys, and it keeps them correct when run as the owner (the benchmark's baseline).

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The role reporting reads run as (created by migration 0008).
pub const READER_ROLE: &str = "claimledger_reader";

/// The setting the row-level security policies compare `chain_id` with.
pub const CHAIN_SETTING: &str = "claimledger.chain_id";

/// Opens a read-only transaction that sees `chain`'s rows only.
pub async fn begin_chain_read(
    pool: &PgPool,
    chain: Uuid,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *transaction)
        .await?;
    sqlx::query(&format!("SET LOCAL ROLE {READER_ROLE}"))
        .execute(&mut *transaction)
        .await?;
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(CHAIN_SETTING)
        .bind(chain.to_string())
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}
