//! The one place parked positions are recorded: commits and messages a projection could not apply,
//! kept with their reason so an operator can see and replay them.

use claimledger_derive::rows::ParkedRow;
use sqlx::PgConnection;

use crate::error::ProjectorError;

/// The projection name parked commits are recorded under.
pub(crate) const PARKED_PROJECTION: &str = crate::LIVE_SCHEMA;

/// Records parked positions (once each: a position parked before keeps its first row). A reason
/// quoting the refused value may hold a NUL character, which a text column refuses: it is written
/// as `\u0000`, so that recording why a commit was parked never fails for the same reason.
pub(crate) async fn write_parked(
    connection: &mut PgConnection,
    rows: &[ParkedRow],
) -> Result<(), ProjectorError> {
    if rows.is_empty() {
        return Ok(());
    }
    let errors: Vec<std::borrow::Cow<'_, str>> = rows
        .iter()
        .map(|row| {
            if row.error.contains('\0') {
                std::borrow::Cow::Owned(row.error.replace('\0', "\\u0000"))
            } else {
                std::borrow::Cow::Borrowed(row.error.as_str())
            }
        })
        .collect();
    sqlx::query(
        "INSERT INTO public.parked_events (projection, sequence, subject, chain_id, error, payload) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::uuid[], $5::text[], $6::bytea[]) \
         ON CONFLICT (projection, sequence) DO NOTHING",
    )
    .bind(PARKED_PROJECTION)
    .bind(rows.iter().map(|row| row.sequence).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.subject.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.chain).collect::<Vec<_>>())
    .bind(errors.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
    .bind(
        rows.iter()
            .map(|row| row.payload.as_deref())
            .collect::<Vec<_>>(),
    )
    .persistent(false)
    .execute(connection)
    .await
    .map_err(ProjectorError::db("recording parked commits"))?;
    Ok(())
}
