//! The unit totals (`therapist_day_units`, `clinic_code_day_units`): a batch adds its deltas, then
//! removes the totals that fell to zero, so that the tables do not depend on how the log was cut
//! into batches. Only a delta that is not positive can leave a total at zero, so only those keys
//! are checked: during a replay that is almost none.

use chrono::NaiveDate;
use claimledger_derive::rows::BatchChanges;
use sqlx::PgConnection;
use uuid::Uuid;

use super::tables::{CLINIC_CODE_DAY_UNITS, OnConflict, THERAPIST_DAY_UNITS, Write};
use crate::error::ProjectorError;

/// Writes both totals of the batch.
pub(super) async fn write_totals(
    connection: &mut PgConnection,
    schema: &str,
    changes: &BatchChanges,
) -> Result<(), ProjectorError> {
    let therapist_day: Vec<(Uuid, Uuid, NaiveDate, i64)> = changes
        .therapist_day
        .iter()
        .map(|((chain, therapist, day), delta)| (*chain, *therapist, *day, *delta))
        .collect();
    if !therapist_day.is_empty() {
        let statement = THERAPIST_DAY_UNITS.upsert(schema, OnConflict::Add(&["units"]));
        Write::new(&statement, &THERAPIST_DAY_UNITS)
            .column(&therapist_day, |row| row.0)
            .column(&therapist_day, |row| row.1)
            .column(&therapist_day, |row| row.2)
            .column(&therapist_day, |row| row.3)
            .run(&mut *connection, "writing therapist day units")
            .await?;
        let shrunk: Vec<_> = therapist_day.iter().filter(|row| row.3 <= 0).collect();
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
            .bind(shrunk.iter().map(|row| row.0).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|row| row.1).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|row| row.2).collect::<Vec<_>>())
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db(
                "deleting therapist day units that fell to zero",
            ))?;
        }
    }
    let clinic_code_day: Vec<(Uuid, Uuid, &str, NaiveDate, i64)> = changes
        .clinic_code_day
        .iter()
        .map(|((chain, clinic, code, day), delta)| (*chain, *clinic, code.as_str(), *day, *delta))
        .collect();
    if !clinic_code_day.is_empty() {
        let statement = CLINIC_CODE_DAY_UNITS.upsert(schema, OnConflict::Add(&["units"]));
        Write::new(&statement, &CLINIC_CODE_DAY_UNITS)
            .column(&clinic_code_day, |row| row.0)
            .column(&clinic_code_day, |row| row.1)
            .column(&clinic_code_day, |row| row.2)
            .column(&clinic_code_day, |row| row.3)
            .column(&clinic_code_day, |row| row.4)
            .run(&mut *connection, "writing clinic code day units")
            .await?;
        let shrunk: Vec<_> = clinic_code_day.iter().filter(|row| row.4 <= 0).collect();
        if !shrunk.is_empty() {
            sqlx::query(&format!(
                "DELETE FROM {schema}.clinic_code_day_units t \
                 USING UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::date[]) \
                   AS d(chain_id, clinic_id, code, day) \
                 WHERE t.units = 0 AND t.chain_id = d.chain_id AND t.clinic_id = d.clinic_id \
                   AND t.code = d.code AND t.day = d.day"
            ))
            .bind(shrunk.iter().map(|row| row.0).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|row| row.1).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|row| row.2).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|row| row.3).collect::<Vec<_>>())
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
