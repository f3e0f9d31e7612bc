//! The draft claims a batch's rules changes may re-price, read inside the batch transaction.

use chrono::NaiveDate;
use claimledger_derive::keys::SessionKey;
use claimledger_derive::reprice::{StoredDraft, batch_rules_changes};
use claimledger_events::ReplayItem;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectorError;

/// Reads the stored draft claims that the batch's rules versions may re-price: same chain and
/// payer, date of service on or after the version's `effective_from`, status `draft`. Runs inside
/// the batch transaction; no query when the batch records no rules.
pub(crate) async fn load_drafts(
    connection: &mut PgConnection,
    schema: &str,
    items: &[ReplayItem],
) -> Result<Vec<StoredDraft>, ProjectorError> {
    let changes = batch_rules_changes(items);
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let chains: Vec<Uuid> = changes.iter().map(|change| change.0).collect();
    let payers: Vec<Uuid> = changes.iter().map(|change| change.1).collect();
    let days: Vec<NaiveDate> = changes.iter().map(|change| change.2).collect();
    let rows: Vec<(Uuid, Uuid, Uuid, Uuid, NaiveDate, i64, i64)> = sqlx::query_as(&format!(
        "SELECT DISTINCT c.chain_id, c.session_id, c.payer_id, s.clinic_id, c.date_of_service, \
                s.last_sequence, c.last_sequence \
         FROM {schema}.claims c \
         JOIN UNNEST($1::uuid[], $2::uuid[], $3::date[]) AS k(chain_id, payer_id, day) \
           ON c.chain_id = k.chain_id AND c.payer_id = k.payer_id AND c.date_of_service >= k.day \
         JOIN {schema}.sessions s ON s.chain_id = c.chain_id AND s.session_id = c.session_id \
         WHERE c.status = 'draft' \
         ORDER BY c.chain_id, c.session_id"
    ))
    .bind(chains)
    .bind(payers)
    .bind(days)
    .persistent(false)
    .fetch_all(connection)
    .await
    .map_err(ProjectorError::db("reading draft claims to re-price"))?;
    Ok(rows
        .into_iter()
        .map(
            |(chain, session, payer, clinic, date_of_service, session_sequence, claim_sequence)| {
                StoredDraft {
                    key: SessionKey { chain, session },
                    payer,
                    clinic,
                    date_of_service,
                    session_sequence: u64::try_from(session_sequence).unwrap_or(0),
                    claim_sequence: u64::try_from(claim_sequence).unwrap_or(0),
                }
            },
        )
        .collect())
}
