//! Digests of every read model: an MD5 of each table's rows in primary-key order, so two builds of
//! the read models can be compared exactly.

use std::collections::BTreeMap;

use sqlx::PgPool;
use uuid::Uuid;

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
        let (rows, md5): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) \
             FROM {schema}.{table} t WHERE $1::uuid IS NULL OR t.chain_id = $1"
        ))
        .bind(chain)
        .persistent(false)
        .fetch_one(pool)
        .await
        .map_err(ProjectorError::db("digesting a read model"))?;
        digests.insert(table, TableDigest { rows, md5 });
    }
    Ok(digests)
}
