//! The provider directory's rows: the clinics and therapists a batch needs that the
//! [`Directory`] has not cached, read from the projector's own schema (never the sessions API's
//! tables, so a rebuild into a fresh schema is derived from the log alone).

use chrono::NaiveDate;
use claimledger_derive::directory::Directory;
use claimledger_derive::hashing::HashSet;
use claimledger_events::ReplayItem;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ProjectorError;

/// A stored referral, as a claim's scrubber judges it.
#[derive(Debug, sqlx::FromRow)]
struct StoredReferral {
    referral_id: Uuid,
    issued_on: NaiveDate,
    expires_on: NaiveDate,
    diagnoses: Vec<String>,
}

/// Takes in the batch's clinic, therapist and referral registrations, then loads from `schema` the rows of
/// the given clinics, therapists and referrals that are still not cached, in two queries. Ids without a row
/// stay unknown and are asked for again next time.
pub(crate) async fn load_directory(
    directory: &mut Directory,
    pool: &PgPool,
    schema: &str,
    items: &[ReplayItem],
    clinics: &HashSet<Uuid>,
    therapists: &HashSet<Uuid>,
    referrals: &HashSet<Uuid>,
) -> Result<(), ProjectorError> {
    directory.absorb(items);
    let missing_clinics = directory.missing_clinics(clinics);
    if !missing_clinics.is_empty() {
        let rows: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(&format!(
            "SELECT clinic_id, npi, tax_id, time_zone, place_of_service FROM {schema}.clinics \
             WHERE clinic_id = ANY($1)"
        ))
        .bind(&missing_clinics)
        .persistent(false)
        .fetch_all(pool)
        .await
        .map_err(ProjectorError::db("reading clinics"))?;
        for (id, npi, tax_id, time_zone, place_of_service) in rows {
            directory.insert_clinic(id, &npi, &tax_id, &time_zone, &place_of_service);
        }
    }
    let missing_therapists = directory.missing_therapists(therapists);
    if !missing_therapists.is_empty() {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(&format!(
            "SELECT therapist_id, npi FROM {schema}.therapists WHERE therapist_id = ANY($1)"
        ))
        .bind(&missing_therapists)
        .persistent(false)
        .fetch_all(pool)
        .await
        .map_err(ProjectorError::db("reading therapists"))?;
        for (id, npi) in rows {
            directory.insert_therapist(id, &npi);
        }
    }
    let missing_referrals = directory.missing_referrals(referrals);
    if !missing_referrals.is_empty() {
        let rows: Vec<StoredReferral> = sqlx::query_as(&format!(
            "SELECT referral_id, issued_on, expires_on, diagnoses FROM {schema}.referrals \
             WHERE referral_id = ANY($1)"
        ))
        .bind(&missing_referrals)
        .persistent(false)
        .fetch_all(pool)
        .await
        .map_err(ProjectorError::db("reading referrals"))?;
        for row in rows {
            directory.insert_referral(
                row.referral_id,
                row.issued_on,
                row.expires_on,
                row.diagnoses,
            );
        }
    }
    Ok(())
}
