//! Digests of every read model: an MD5 of each table's rows in primary-key order, so two builds of
//! the read models can be compared exactly.

use std::collections::BTreeMap;

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ProjectorError;

pub use crate::store::READ_MODEL_TABLES;

/// One table's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    /// Rows in the table.
    pub rows: i64,
    /// MD5 of the rows' text forms, newline-separated, in primary-key order.
    pub md5: String,
}

/// Digests every read-model table of `schema`, limited to `chain` when given.
pub async fn read_model_checksums(
    pool: &PgPool,
    schema: &str,
    chain: Option<Uuid>,
) -> Result<BTreeMap<&'static str, TableDigest>, ProjectorError> {
    let mut digests = BTreeMap::new();
    for (table, order) in READ_MODEL_TABLES {
        let (rows, md5) = crate::store::table_digest(pool, schema, table, order, chain).await?;
        digests.insert(table, TableDigest { rows, md5 });
    }
    Ok(digests)
}
