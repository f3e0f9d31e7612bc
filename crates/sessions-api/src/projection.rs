//! The reference tables (clinics, therapists, payers, patients, coverages, referrals) as a projection
//! of the log's reference events.
//!
//! The command path appends a reference event, then calls [`apply_commit`] with the sequence the log
//! gave it, so the next request reads its own write. [`catch_up`] replays the log's reference commits
//! into the same tables (at start-up, and from tests): every upsert is idempotent and records the
//! commit's sequence, so replaying what is already there changes nothing, a row never moves
//! backwards, and rows that were lost are written again. PHI is not on the log and is not touched
//! here, except that a `PatientForgotten` on the log deletes whatever PHI of that patient is left (a
//! crash between the append and the delete on the command path is finished by the next catch-up).

use chrono::{DateTime, Utc};
use claimledger_events::{AggregateKind, Commit, Event};
use claimledger_log::{EventLog, LogError, RecordedCommit, ReplayFilter, ReplayItem, error_chain};
use claimledger_sessions::schema::{SchemaError, from_epoch_day, from_micros};
use futures::StreamExt;
use sqlx::{Acquire, PgConnection, PgPool};
use uuid::Uuid;

/// Why a reference commit could not be projected.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed.
    #[error("could not write the reference projection")]
    Database(#[from] sqlx::Error),
    /// The log could not be read.
    #[error("could not read the log")]
    Log(#[from] LogError),
    /// A day or instant on the log is out of range.
    #[error("a reference event holds a value out of range")]
    Schema(#[from] SchemaError),
}

impl From<ProjectionError> for crate::error::ApiError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::Database(error) => error.into(),
            ProjectionError::Log(error) => error.into(),
            ProjectionError::Schema(error) => error.into(),
        }
    }
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatchUp {
    /// Reference commits applied (including ones the tables already held).
    pub commits: u64,
    /// Log positions that could not be decoded (parked by the log) and were skipped.
    pub skipped: u64,
    /// Reference commits that decoded but could not be applied (a value the database refuses, a
    /// day out of range): recorded in `parked_events` and skipped.
    pub parked: u64,
}

/// The `parked_events.projection` of the API's reference tables.
pub const PROJECTION: &str = "sessions-api.reference";

impl ProjectionError {
    /// Whether the commit itself is at fault (it can never be applied, so it is parked), rather
    /// than the database or the log being unreachable (the catch-up fails and is tried again).
    fn is_commit_at_fault(&self) -> bool {
        match self {
            ProjectionError::Database(error) => {
                !crate::error::is_outage(error)
                    && !matches!(error, sqlx::Error::Database(inner) if inner.code().as_deref() == Some("40001"))
            }
            ProjectionError::Schema(_) => true,
            ProjectionError::Log(_) => false,
        }
    }
}

/// Whether commits of this kind are projected here.
pub fn is_reference(kind: AggregateKind) -> bool {
    matches!(
        kind,
        AggregateKind::Clinic
            | AggregateKind::Therapist
            | AggregateKind::Payer
            | AggregateKind::Patient
            | AggregateKind::Coverage
            | AggregateKind::Referral
    )
}

/// Replays every reference commit of the log into the tables, in log order, in one transaction.
///
/// The whole log is read (the subject layout puts the chain first, so the reference kinds of all
/// chains have no single filter); the log replays about 140k commits/s, and only reference commits
/// are written.
#[tracing::instrument(name = "reference.catch_up", skip_all)]
pub async fn catch_up(pool: &PgPool, log: &EventLog) -> Result<CatchUp, ProjectionError> {
    let mut outcome = CatchUp::default();
    let mut replay = log.replay(1, ReplayFilter::All).await?;
    let mut transaction = pool.begin().await?;
    while let Some(item) = replay.next().await {
        match item? {
            ReplayItem::Commit(recorded) => {
                if !is_reference(recorded.commit.aggregate_kind) {
                    continue;
                }
                // Each commit in a savepoint: one the database refuses is rolled back alone and
                // parked, so one bad event never keeps the API from starting.
                let mut savepoint = transaction.begin().await?;
                match apply_commit(&mut savepoint, recorded.sequence, &recorded.commit).await {
                    Ok(()) => {
                        savepoint.commit().await?;
                        outcome.commits += 1;
                    }
                    Err(error) if error.is_commit_at_fault() => {
                        savepoint.rollback().await?;
                        tracing::warn!(
                            seq = recorded.sequence,
                            subject = %recorded.subject,
                            chain = %recorded.commit.chain,
                            error = %error_chain(&error),
                            "reference commit parked: it cannot be applied"
                        );
                        park(&mut transaction, &recorded, &error_chain(&error)).await?;
                        outcome.parked += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
            ReplayItem::Invalid { .. } => outcome.skipped += 1,
        }
    }
    transaction.commit().await?;
    tracing::info!(
        commits = outcome.commits,
        skipped = outcome.skipped,
        parked = outcome.parked,
        "reference tables caught up with the log"
    );
    Ok(outcome)
}

/// Records a reference commit the tables cannot hold (once: a later catch-up finds it again).
async fn park(
    connection: &mut PgConnection,
    recorded: &RecordedCommit,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO parked_events (projection, sequence, subject, chain_id, error) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection, sequence) DO NOTHING",
    )
    .bind(PROJECTION)
    .bind(i64::try_from(recorded.sequence).unwrap_or(i64::MAX))
    .bind(&recorded.subject)
    .bind(recorded.commit.chain.as_uuid())
    .bind(reason.replace('\0', "\\0"))
    .execute(connection)
    .await?;
    Ok(())
}

/// How many reference commits are parked and not resolved.
pub async fn parked_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM parked_events WHERE projection = $1 AND resolved_at IS NULL",
    )
    .bind(PROJECTION)
    .fetch_one(pool)
    .await
}

/// Projects one reference commit stored at `sequence`. Commits of other kinds are ignored.
pub async fn apply_commit(
    connection: &mut PgConnection,
    sequence: u64,
    commit: &Commit,
) -> Result<(), ProjectionError> {
    if !is_reference(commit.aggregate_kind) {
        return Ok(());
    }
    let chain = commit.chain.as_uuid();
    let id = commit.aggregate_id.as_uuid();
    let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
    let recorded_at = from_micros(commit.recorded_at)?;
    // Chains and their keys live only in PostgreSQL. When the database was lost and is caught up
    // from the log, the chain row is recreated so its reference data can be restored; its name is
    // gone with the database, and an admin key must be issued again (`claimledger keys create`).
    sqlx::query(
        "INSERT INTO chains (id, name) VALUES ($1, 'restored from the log: ' || $1::text) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(chain)
    .execute(&mut *connection)
    .await?;
    for record in &commit.events {
        let row = Row {
            chain,
            id,
            sequence,
            recorded_at,
        };
        apply_event(&mut *connection, row, &record.event).await?;
    }
    Ok(())
}

/// The key and position every upsert writes.
#[derive(Debug, Clone, Copy)]
struct Row {
    chain: Uuid,
    id: Uuid,
    sequence: i64,
    recorded_at: DateTime<Utc>,
}

/// The guard every upsert shares: the row stays in its chain and only moves forward.
const FORWARD_ONLY: &str =
    "WHERE t.chain_id = EXCLUDED.chain_id AND t.last_sequence < EXCLUDED.last_sequence";

async fn apply_event(
    connection: &mut PgConnection,
    row: Row,
    event: &Event,
) -> Result<(), ProjectionError> {
    match event {
        Event::ClinicRegistered(clinic) => {
            sqlx::query(&format!(
                "INSERT INTO clinics AS t (id, chain_id, name, npi, tax_id, address_line, city, state, \
                 postal_code, time_zone, place_of_service, created_at, last_sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, npi = EXCLUDED.npi, \
                 tax_id = EXCLUDED.tax_id, address_line = EXCLUDED.address_line, city = EXCLUDED.city, \
                 state = EXCLUDED.state, postal_code = EXCLUDED.postal_code, \
                 time_zone = EXCLUDED.time_zone, place_of_service = EXCLUDED.place_of_service, \
                 created_at = EXCLUDED.created_at, last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(&clinic.name)
            .bind(&clinic.npi)
            .bind(&clinic.tax_id)
            .bind(&clinic.address_line)
            .bind(&clinic.city)
            .bind(&clinic.state)
            .bind(&clinic.postal_code)
            .bind(&clinic.time_zone)
            .bind(&clinic.place_of_service)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(connection)
            .await?;
        }
        Event::TherapistRegistered(therapist) => {
            sqlx::query(&format!(
                "INSERT INTO therapists AS t (id, chain_id, name, npi, licence_number, licence_state, \
                 created_at, last_sequence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, npi = EXCLUDED.npi, \
                 licence_number = EXCLUDED.licence_number, licence_state = EXCLUDED.licence_state, \
                 created_at = EXCLUDED.created_at, last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(&therapist.name)
            .bind(&therapist.npi)
            .bind(&therapist.licence_number)
            .bind(&therapist.licence_state)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(connection)
            .await?;
        }
        Event::PayerRegistered(payer) => {
            sqlx::query(&format!(
                "INSERT INTO payers AS t (id, chain_id, name, rules_key, created_at, last_sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (chain_id, id) DO UPDATE SET name = EXCLUDED.name, \
                 rules_key = EXCLUDED.rules_key, created_at = EXCLUDED.created_at, \
                 last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(&payer.name)
            .bind(&payer.rules_key)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(connection)
            .await?;
        }
        Event::PatientRegistered(_) => {
            sqlx::query(&format!(
                "INSERT INTO patients AS t (id, chain_id, forgotten, created_at, last_sequence) \
                 VALUES ($1, $2, false, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, \
                 last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(&mut *connection)
            .await?;
        }
        Event::PatientForgotten(_) => {
            // Registered first on the log, so the row exists; the insert only covers a log whose
            // registration was parked, and then keeps the forgotten patient's id.
            sqlx::query(&format!(
                "INSERT INTO patients AS t (id, chain_id, forgotten, created_at, last_sequence) \
                 VALUES ($1, $2, true, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET forgotten = true, \
                 last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(&mut *connection)
            .await?;
            delete_phi(connection, row.chain, row.id).await?;
        }
        Event::CoverageRecorded(coverage) => {
            sqlx::query(&format!(
                "INSERT INTO coverages AS t (id, chain_id, patient_id, payer_id, valid_from, valid_to, \
                 created_at, last_sequence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, \
                 payer_id = EXCLUDED.payer_id, valid_from = EXCLUDED.valid_from, \
                 valid_to = EXCLUDED.valid_to, created_at = EXCLUDED.created_at, \
                 last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(coverage.patient.as_uuid())
            .bind(coverage.payer.as_uuid())
            .bind(from_epoch_day(coverage.valid_from)?)
            .bind(coverage.valid_to.map(from_epoch_day).transpose()?)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(connection)
            .await?;
        }
        Event::ReferralRecorded(referral) => {
            let diagnoses: Vec<String> = referral
                .diagnoses
                .iter()
                .map(|code| code.as_str().to_owned())
                .collect();
            sqlx::query(&format!(
                "INSERT INTO referrals AS t (id, chain_id, patient_id, referring_npi, diagnoses, \
                 authorised_visits, issued_on, expires_on, created_at, last_sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, \
                 referring_npi = EXCLUDED.referring_npi, diagnoses = EXCLUDED.diagnoses, \
                 authorised_visits = EXCLUDED.authorised_visits, issued_on = EXCLUDED.issued_on, \
                 expires_on = EXCLUDED.expires_on, created_at = EXCLUDED.created_at, \
                 last_sequence = EXCLUDED.last_sequence {FORWARD_ONLY}"
            ))
            .bind(row.id)
            .bind(row.chain)
            .bind(referral.patient.as_uuid())
            .bind(&referral.referring_npi)
            .bind(&diagnoses)
            .bind(i32::from(referral.authorised_visits))
            .bind(from_epoch_day(referral.issued_on)?)
            .bind(from_epoch_day(referral.expires_on)?)
            .bind(row.recorded_at)
            .bind(row.sequence)
            .execute(connection)
            .await?;
        }
        // Only reference events reach this function; anything else on a reference subject is
        // not ours to project.
        _ => {}
    }
    Ok(())
}

/// Deletes every PHI row of a patient: their names and date of birth, and their coverages' member
/// ids.
pub async fn delete_phi(
    connection: &mut PgConnection,
    chain: Uuid,
    patient: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM patient_phi WHERE chain_id = $1 AND patient_id = $2")
        .bind(chain)
        .bind(patient)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM coverage_phi WHERE chain_id = $1 AND patient_id = $2")
        .bind(chain)
        .bind(patient)
        .execute(connection)
        .await?;
    Ok(())
}
