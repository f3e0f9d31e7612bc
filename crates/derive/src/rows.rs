//! The rows one batch changes, as the store writes them: the fold's output, shaped like the tables.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_events::{Commit, ReplayItem, encode, error_chain};
use uuid::Uuid;

use crate::keys::SessionKey;

/// Billed units per code, in code order.
pub type Units = Vec<(String, i32)>;

/// What the read model held for a session before this batch.
#[derive(Debug)]
pub struct StoredSession {
    /// The session's own log events so far, or why they could not be decoded.
    pub events: Result<Commit, String>,
    /// Where its units were counted.
    pub footprint: Footprint,
}

/// Where a session's billed units are counted in the totals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Footprint {
    pub clinic: Option<Uuid>,
    pub therapist: Option<Uuid>,
    pub day: Option<NaiveDate>,
    pub units: Units,
}

/// One `sessions` row.
#[derive(Debug)]
pub struct SessionRow {
    pub chain: Uuid,
    pub session: Uuid,
    pub clinic: Uuid,
    pub therapist: Option<Uuid>,
    pub patient: Option<Uuid>,
    pub payer: Option<Uuid>,
    pub status: &'static str,
    pub scheduled_start: Option<DateTime<Utc>>,
    pub date_of_service: Option<NaiveDate>,
    pub planned_minutes: Option<i32>,
    pub service_minutes: i32,
    pub modality_minutes: i32,
    pub services_json: String,
    pub diagnoses: String,
    pub unit_codes: String,
    pub unit_counts: String,
    pub total_units: i32,
    pub last_sequence: i64,
    pub log_events: Vec<u8>,
    /// Whether the session had a stored row before this batch (false: the row is new).
    pub stored: bool,
    /// What the row will hold once written, for a batch folded before this one's write commits
    /// (the projector's pipeline): the history `log_events` encodes, and the footprint.
    pub next_stored: Option<StoredSession>,
}

/// One `claims` row and its lines.
#[derive(Debug, Clone)]
pub struct ClaimRow {
    pub chain: Uuid,
    pub session: Uuid,
    pub payer: Uuid,
    pub clinic: Uuid,
    pub therapist: Uuid,
    pub patient: Uuid,
    pub date_of_service: Option<NaiveDate>,
    pub payer_key: Option<String>,
    pub rules_version: Option<i32>,
    pub rules_sha256: Option<Vec<u8>>,
    pub place_of_service: Option<String>,
    pub billing_npi: Option<String>,
    pub tax_id: Option<String>,
    pub diagnoses: String,
    pub total_charge_cents: i64,
    pub findings_json: String,
    pub derivation_error: Option<String>,
    pub last_sequence: i64,
    pub lines: Vec<LineRow>,
}

/// One `claim_lines` row (without its claim's key).
#[derive(Debug, Clone)]
pub struct LineRow {
    pub code: String,
    pub modifiers: String,
    pub diagnosis_pointers: String,
    pub units: i32,
    pub charge_cents: i64,
    pub rendering_npi: String,
}

/// One `payer_rules` row.
#[derive(Debug)]
pub struct RulesRow {
    pub chain: Uuid,
    pub payer: Uuid,
    pub version: i32,
    pub payer_key: String,
    pub effective_from: NaiveDate,
    pub rules_toml: String,
    pub content_sha256: Vec<u8>,
    pub sequence: i64,
}

/// One `parked_events` row.
#[derive(Debug)]
pub struct ParkedRow {
    pub sequence: i64,
    pub subject: String,
    pub chain: Option<Uuid>,
    pub error: String,
    pub payload: Option<Vec<u8>>,
}

impl ParkedRow {
    /// The parked row of `item`, should it have to be parked whole; the caller sets `error`.
    pub fn of(item: &ReplayItem) -> Self {
        match item {
            ReplayItem::Commit(recorded) => Self {
                sequence: to_i64(recorded.sequence),
                subject: recorded.subject.clone(),
                chain: Some(recorded.commit.chain.as_uuid()),
                error: String::new(),
                payload: encode(&recorded.commit).ok(),
            },
            ReplayItem::Invalid {
                sequence,
                subject,
                error,
            } => Self {
                sequence: to_i64(*sequence),
                subject: subject.clone(),
                chain: None,
                error: error_chain(error),
                payload: None,
            },
        }
    }
}

/// Everything one batch changes.
#[derive(Debug, Default)]
pub struct BatchChanges {
    pub sessions: Vec<SessionRow>,
    pub claims: Vec<ClaimRow>,
    /// Sessions whose existing claim lines are replaced by re-derived ones.
    pub replaced_claims: Vec<SessionKey>,
    pub therapist_day: BTreeMap<(Uuid, Uuid, NaiveDate), i64>,
    pub clinic_code_day: BTreeMap<(Uuid, Uuid, String, NaiveDate), i64>,
    pub rules: Vec<RulesRow>,
    pub parked: Vec<ParkedRow>,
    /// The batch's claim lifecycle commits, converted; [`crate::lifecycle`] writes them.
    pub claim_commits: Vec<crate::lifecycle::ClaimCommit>,
    /// Reference rows (clinics, therapists, payers, patients, coverages, referrals).
    pub reference: crate::reference::ReferenceChanges,
    /// Events folded (parked positions excluded).
    pub events: u64,
    /// The `recorded_at` of the batch's last commit, in microseconds.
    pub last_recorded_at: Option<i64>,
}

/// Joins values with commas; the SQL side splits them with `string_to_array(.., ',')`.
pub fn join<T: AsRef<str>>(values: impl Iterator<Item = T>) -> String {
    let mut text = String::new();
    for (index, value) in values.enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(value.as_ref());
    }
    text
}

pub fn to_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}
