//! The API's SQL: where a session or claim lives, what a booking checks, the slot it takes and
//! gives up, the derived lines a submission sends, and the reference rows and PHI the reference
//! endpoints read and write. Rows come back as named structs; the handlers turn them into domain
//! values and answers. (Key management is the edge's, `claimledger_http_edge::keys`; the reference
//! tables are written by `projection`, the reference projection of the log; idempotency records by
//! `idempotency`.)

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_events::ChainId;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The read-model schema the projector keeps live.
const READ_MODELS: &str = "read_models";

/// Where a session lives, from its slot row and its clinic.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) clinic_id: Uuid,
    pub(crate) referral_id: Option<Uuid>,
    pub(crate) time_zone: String,
}

/// The session's slot row joined with its clinic, in the key's chain.
pub(crate) async fn session_row(
    pool: &PgPool,
    chain: ChainId,
    session: Uuid,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.clinic_id, s.referral_id, c.time_zone FROM session_slots s \
         JOIN clinics c ON c.chain_id = s.chain_id AND c.id = s.clinic_id \
         WHERE s.chain_id = $1 AND s.session_id = $2",
    )
    .bind(chain.as_uuid())
    .bind(session)
    .fetch_optional(pool)
    .await
}

/// What a booking's references find in the chain.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BookingReferences {
    /// The clinic's time zone; `None` when the chain has no such clinic.
    pub(crate) clinic_time_zone: Option<String>,
    pub(crate) therapist_found: bool,
    pub(crate) patient_found: bool,
    pub(crate) payer_found: bool,
}

/// The references a booking names, looked up in one round trip.
pub(crate) async fn booking_references(
    connection: &mut PgConnection,
    chain: ChainId,
    clinic: Uuid,
    therapist: Uuid,
    patient: Uuid,
    payer: Option<Uuid>,
) -> Result<BookingReferences, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT time_zone FROM clinics WHERE chain_id = $1 AND id = $2) AS clinic_time_zone, \
                EXISTS (SELECT 1 FROM therapists WHERE chain_id = $1 AND id = $3) AS therapist_found, \
                EXISTS (SELECT 1 FROM patients WHERE chain_id = $1 AND id = $4) AS patient_found, \
                EXISTS (SELECT 1 FROM payers WHERE chain_id = $1 AND id = $5) AS payer_found",
    )
    .bind(chain.as_uuid())
    .bind(clinic)
    .bind(therapist)
    .bind(patient)
    .bind(payer)
    .fetch_one(connection)
    .await
}

/// A coverage's terms.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CoverageRow {
    pub(crate) patient_id: Uuid,
    pub(crate) payer_id: Uuid,
    pub(crate) valid_from: NaiveDate,
    pub(crate) valid_to: Option<NaiveDate>,
}

/// The coverage `coverage` of the chain.
pub(crate) async fn coverage_row(
    connection: &mut PgConnection,
    chain: ChainId,
    coverage: Uuid,
) -> Result<Option<CoverageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT patient_id, payer_id, valid_from, valid_to FROM coverages \
         WHERE chain_id = $1 AND id = $2",
    )
    .bind(chain.as_uuid())
    .bind(coverage)
    .fetch_optional(connection)
    .await
}

/// A referral's terms and how many of its visits other sessions have booked.
#[derive(Debug, Clone)]
pub(crate) struct ReferralRow {
    pub(crate) patient_id: Uuid,
    pub(crate) issued_on: NaiveDate,
    pub(crate) expires_on: NaiveDate,
    pub(crate) authorised_visits: i32,
    pub(crate) visits_booked: i64,
}

/// The referral's terms, locked for the rest of the transaction so that two bookings cannot both
/// take its last authorised visit, with the visits booked by sessions other than `session`.
pub(crate) async fn referral_row(
    connection: &mut PgConnection,
    chain: ChainId,
    referral: Uuid,
    session: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    let row: Option<(Uuid, NaiveDate, NaiveDate, i32)> = sqlx::query_as(
        "SELECT patient_id, issued_on, expires_on, authorised_visits FROM referrals \
         WHERE chain_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(chain.as_uuid())
    .bind(referral)
    .fetch_optional(&mut *connection)
    .await?;
    let Some((patient_id, issued_on, expires_on, authorised_visits)) = row else {
        return Ok(None);
    };
    // The chain cannot lead the scan (see `release_slot`): the referral's index finds its bookings.
    let visits_booked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_slots WHERE chain_id IS NOT DISTINCT FROM $1 \
         AND referral_id = $2 AND released_at IS NULL AND session_id <> $3",
    )
    .bind(chain.as_uuid())
    .bind(referral)
    .bind(session)
    .fetch_one(connection)
    .await?;
    Ok(Some(ReferralRow {
        patient_id,
        issued_on,
        expires_on,
        authorised_visits,
        visits_booked,
    }))
}

/// A slot to book: the session, who and what it is for, and the therapist's interval.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) session: Uuid,
    pub(crate) clinic: Uuid,
    pub(crate) therapist: Uuid,
    pub(crate) patient: Uuid,
    pub(crate) coverage: Option<Uuid>,
    pub(crate) referral: Option<Uuid>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// What booking a slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Booking {
    /// Booked, or already booked by this session (a retry).
    Booked,
    /// The therapist has another session overlapping the interval.
    Overlaps,
}

/// Books the therapist's interval; the exclusion constraint refuses an overlap atomically.
pub(crate) async fn book_slot(
    connection: &mut PgConnection,
    chain: ChainId,
    slot: &Slot,
) -> Result<Booking, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO session_slots (session_id, chain_id, clinic_id, therapist_id, patient_id, \
         coverage_id, referral_id, booked) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, tstzrange($8, $9, '[)')) \
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(slot.session)
    .bind(chain.as_uuid())
    .bind(slot.clinic)
    .bind(slot.therapist)
    .bind(slot.patient)
    .bind(slot.coverage)
    .bind(slot.referral)
    .bind(slot.start)
    .bind(slot.end)
    .execute(connection)
    .await;
    match result {
        Ok(_) => Ok(Booking::Booked),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23P01") => {
            Ok(Booking::Overlaps)
        }
        Err(error) => Err(error),
    }
}

/// How a slot is given up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SlotRelease {
    /// The session ended without taking place: keep the row for audit, free the interval.
    Release,
    /// The session never reached the log: remove the row.
    Delete,
}

/// Gives up the session's slot.
///
/// Slot rows are found by session (here) or referral (`referral_row`), and the chain is compared
/// with `IS NOT DISTINCT FROM` (the same as `=` for these non-null ids) because that is never an
/// index condition. With `=`, the planner may lead with the exclusion constraint's GiST index, whose
/// first column is the chain, and read every booked slot of the chain: it does so whenever the
/// table's statistics are missing or stale (a fresh table, autovacuum off), and every booking then
/// cost time in proportion to the chain's history (measured: 21,600 visits recorded at a rate
/// falling from 130 to 50 per second, the referral count taking most of PostgreSQL's time). The
/// primary key or the referral's index is then the only way in, whatever the statistics say.
pub(crate) async fn release_slot(
    pool: &PgPool,
    chain: ChainId,
    session: Uuid,
    how: SlotRelease,
) -> Result<(), sqlx::Error> {
    let query = match how {
        SlotRelease::Release => {
            "UPDATE session_slots SET released_at = now() \
             WHERE chain_id IS NOT DISTINCT FROM $1 AND session_id = $2 AND released_at IS NULL"
        }
        SlotRelease::Delete => {
            "DELETE FROM session_slots WHERE chain_id IS NOT DISTINCT FROM $1 AND session_id = $2"
        }
    };
    sqlx::query(query)
        .bind(chain.as_uuid())
        .bind(session)
        .execute(pool)
        .await?;
    Ok(())
}

/// Where a claim lives, from the projector's read models and the clinic.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClaimRow {
    pub(crate) session_id: Uuid,
    pub(crate) payer_id: Uuid,
    pub(crate) clinic_id: Uuid,
    pub(crate) date_of_service: Option<NaiveDate>,
    pub(crate) derivation_error: Option<String>,
    pub(crate) time_zone: String,
}

/// The derived claim `claim` of the chain (`None` also while the projector has not created its
/// read models yet: no claim exists so far).
pub(crate) async fn claim_row(
    pool: &PgPool,
    chain: ChainId,
    claim: Uuid,
) -> Result<Option<ClaimRow>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "SELECT c.session_id, c.payer_id, c.clinic_id, c.date_of_service, c.derivation_error, \
                k.time_zone \
         FROM {READ_MODELS}.claim_ids i \
         JOIN {READ_MODELS}.claims c ON c.chain_id = i.chain_id \
           AND c.session_id = i.session_id AND c.payer_id = i.payer_id \
         JOIN clinics k ON k.chain_id = c.chain_id AND k.id = c.clinic_id \
         WHERE i.chain_id = $1 AND i.claim_id = $2"
    ))
    .bind(chain.as_uuid())
    .bind(claim)
    .fetch_optional(pool)
    .await;
    match row {
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => Ok(None),
        other => other,
    }
}

/// One derived claim line, as the projector wrote it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct DerivedLineRow {
    pub(crate) code: String,
    pub(crate) modifiers: Vec<String>,
    pub(crate) units: i32,
    pub(crate) charge_cents: i64,
}

/// The derived lines of the claim of `session` at `payer`, in line order.
pub(crate) async fn derived_lines(
    pool: &PgPool,
    chain: ChainId,
    session: Uuid,
    payer: Uuid,
) -> Result<Vec<DerivedLineRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT code, modifiers, units, charge_cents FROM {READ_MODELS}.claim_lines \
         WHERE chain_id = $1 AND session_id = $2 AND payer_id = $3 ORDER BY line_number"
    ))
    .bind(chain.as_uuid())
    .bind(session)
    .bind(payer)
    .fetch_all(pool)
    .await
}

/// A table of reference data the API validates ids against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferenceTable {
    Clinics,
    Patients,
    Payers,
}

impl ReferenceTable {
    fn name(self) -> &'static str {
        match self {
            ReferenceTable::Clinics => "clinics",
            ReferenceTable::Patients => "patients",
            ReferenceTable::Payers => "payers",
        }
    }
}

/// Whether `table` holds `id` in `chain`.
pub(crate) async fn exists(
    pool: &PgPool,
    table: ReferenceTable,
    chain: ChainId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let query = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE chain_id = $1 AND id = $2)",
        table.name()
    );
    sqlx::query_scalar(&query)
        .bind(chain.as_uuid())
        .bind(id)
        .fetch_one(pool)
        .await
}

/// A clinic's registered details.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClinicRow {
    pub(crate) name: String,
    pub(crate) npi: String,
    pub(crate) tax_id: String,
    pub(crate) address_line: String,
    pub(crate) city: String,
    pub(crate) state: String,
    pub(crate) postal_code: String,
    pub(crate) time_zone: String,
    pub(crate) place_of_service: String,
}

/// The clinic `id` of the chain.
pub(crate) async fn clinic_row(
    pool: &PgPool,
    chain: ChainId,
    id: Uuid,
) -> Result<Option<ClinicRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, npi, tax_id, address_line, city, state, postal_code, time_zone, \
         place_of_service FROM clinics WHERE chain_id = $1 AND id = $2",
    )
    .bind(chain.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A payer registered over the API (by its rules key).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PayerRow {
    pub(crate) name: String,
    pub(crate) rules_key: String,
}

/// The payer `id` of the chain, when it was registered with a rules key.
pub(crate) async fn payer_row(
    pool: &PgPool,
    chain: ChainId,
    id: Uuid,
) -> Result<Option<PayerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, rules_key FROM payers \
         WHERE chain_id = $1 AND id = $2 AND rules_key IS NOT NULL",
    )
    .bind(chain.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A patient's row joined with their PHI (absent once forgotten).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PatientRow {
    pub(crate) forgotten: bool,
    pub(crate) given_name: Option<String>,
    pub(crate) family_name: Option<String>,
    pub(crate) date_of_birth: Option<NaiveDate>,
}

/// The patient `id` of the chain, with whatever PHI is left.
pub(crate) async fn patient_row(
    pool: &PgPool,
    chain: ChainId,
    id: Uuid,
) -> Result<Option<PatientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.forgotten, phi.given_name, phi.family_name, phi.date_of_birth FROM patients p \
         LEFT JOIN patient_phi phi ON phi.chain_id = p.chain_id AND phi.patient_id = p.id \
         WHERE p.chain_id = $1 AND p.id = $2",
    )
    .bind(chain.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Whether the patient `id` is forgotten (`None`: the chain has no such patient).
pub(crate) async fn patient_forgotten(
    pool: &PgPool,
    chain: ChainId,
    id: Uuid,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar("SELECT forgotten FROM patients WHERE chain_id = $1 AND id = $2")
        .bind(chain.as_uuid())
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A patient's PHI, kept in PostgreSQL only.
#[derive(Debug, Clone)]
pub(crate) struct PatientPhi<'a> {
    pub(crate) patient: Uuid,
    pub(crate) given_name: &'a str,
    pub(crate) family_name: &'a str,
    pub(crate) date_of_birth: NaiveDate,
}

/// Stores a patient's PHI (a retry's second write changes nothing).
pub(crate) async fn insert_patient_phi(
    pool: &PgPool,
    chain: ChainId,
    phi: &PatientPhi<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patient_phi (chain_id, patient_id, given_name, family_name, date_of_birth) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain_id, patient_id) DO NOTHING",
    )
    .bind(chain.as_uuid())
    .bind(phi.patient)
    .bind(phi.given_name)
    .bind(phi.family_name)
    .bind(phi.date_of_birth)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a coverage's member id (a retry's second write changes nothing).
pub(crate) async fn insert_coverage_phi(
    pool: &PgPool,
    chain: ChainId,
    coverage: Uuid,
    patient: Uuid,
    member_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO coverage_phi (chain_id, coverage_id, patient_id, member_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (chain_id, coverage_id) DO NOTHING",
    )
    .bind(chain.as_uuid())
    .bind(coverage)
    .bind(patient)
    .bind(member_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a coverage's member id (its coverage never reached the log).
pub(crate) async fn delete_coverage_phi(
    pool: &PgPool,
    chain: ChainId,
    coverage: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM coverage_phi WHERE chain_id = $1 AND coverage_id = $2")
        .bind(chain.as_uuid())
        .bind(coverage)
        .execute(pool)
        .await?;
    Ok(())
}
