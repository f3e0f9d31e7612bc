//! The payer rules versions the log recorded, as the schema keeps them: the rule book is rebuilt
//! from them when a projector starts, and each batch records its own.

use chrono::NaiveDate;
use claimledger_billing::ReferenceData;
use claimledger_derive::rows::RulesRow;
use claimledger_derive::rules::LogRules;
use claimledger_events::rules::RulesChanged;
use claimledger_events::{EpochDay, PayerId, error_chain};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::tables::{OnConflict, PAYER_RULES, Write};
use crate::error::ProjectorError;

/// A stored rules version.
#[derive(Debug, sqlx::FromRow)]
struct StoredRules {
    chain_id: Uuid,
    payer_id: Uuid,
    version: i32,
    effective_from: NaiveDate,
    rules_toml: String,
    content_sha256: Vec<u8>,
}

/// Rebuilds the in-memory rule book from the schema's `payer_rules` rows, in log order.
pub(crate) async fn load_rules(
    pool: &PgPool,
    schema: &str,
    reference: &ReferenceData,
) -> Result<LogRules, ProjectorError> {
    let rows: Vec<StoredRules> = sqlx::query_as(&format!(
        "SELECT chain_id, payer_id, version, effective_from, rules_toml, content_sha256 \
         FROM {schema}.payer_rules ORDER BY sequence, payer_id, version"
    ))
    .persistent(false)
    .fetch_all(pool)
    .await
    .map_err(ProjectorError::db("reading payer rules"))?;
    let mut rules = LogRules::new(reference.clone());
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    for StoredRules {
        chain_id: chain,
        payer_id: payer,
        version,
        effective_from,
        rules_toml,
        content_sha256,
    } in rows
    {
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

/// Records the batch's rules versions (a version recorded again replaces its row).
pub(crate) async fn write_rules(
    connection: &mut PgConnection,
    schema: &str,
    rows: &[RulesRow],
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let statement = PAYER_RULES.upsert(schema, OnConflict::Replace);
    Write::new(&statement, &PAYER_RULES)
        .column(rows, |row| row.chain)
        .column(rows, |row| row.payer)
        .column(rows, |row| row.version)
        .column(rows, |row| row.payer_key.as_str())
        .column(rows, |row| row.effective_from)
        .column(rows, |row| row.rules_toml.as_str())
        .column(rows, |row| row.content_sha256.as_slice())
        .column(rows, |row| row.sequence)
        .run(connection, "writing payer rules")
        .await
}
