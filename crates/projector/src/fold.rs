//! The in-memory fold of one batch: commits in, changed rows out.
//!
//! Pure apart from its inputs: the stored state of the sessions the batch continues, the rule book
//! as recorded so far (which the batch extends with its own `RulesChanged` events), and the provider
//! directory. Sessions are folded with the session domain's own `apply`; a claim is derived at each
//! completion, with the rules the log had recorded up to that commit. Unit totals are written as
//! deltas against each session's previous footprint, so an amended claim moves its units rather
//! than adding them twice.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_billing::{Finding, derive_claim, scrub};
use claimledger_events::{AggregateKind, Commit, EncodeError, Event, encode};
use claimledger_log::ReplayItem;
use claimledger_sessions::body::BodyRegion;
use claimledger_sessions::command::Payment;
use claimledger_sessions::event::SessionEvent;
use claimledger_sessions::schema::{from_log_event, from_micros};
use claimledger_sessions::session::Session;
use claimledger_sessions::visit::{VisitFacts, completed_visit};
use uuid::Uuid;

use crate::directory::Directory;
use crate::hashing::HashMap;
use crate::rederive::{StoredDraft, reprice};
use crate::rules::{LogRules, PreparedVersion};

/// A session's key: chain, then session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionKey {
    /// The chain.
    pub(crate) chain: Uuid,
    /// The session.
    pub(crate) session: Uuid,
}

/// Billed units per code, in code order.
pub(crate) type Units = Vec<(String, i32)>;

/// The projection name parked commits are recorded under.
pub(crate) const PARKED_PROJECTION: &str = crate::LIVE_SCHEMA;

/// What the read model held for a session before this batch.
#[derive(Debug)]
pub(crate) struct StoredSession {
    /// The session's own log events so far, or why they could not be decoded.
    pub events: Result<Commit, String>,
    /// Where its units were counted.
    pub footprint: Footprint,
}

/// Where a session's billed units are counted in the totals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Footprint {
    pub clinic: Option<Uuid>,
    pub therapist: Option<Uuid>,
    pub day: Option<NaiveDate>,
    pub units: Units,
}

/// One `sessions` row.
#[derive(Debug)]
pub(crate) struct SessionRow {
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
pub(crate) struct ClaimRow {
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
pub(crate) struct LineRow {
    pub code: String,
    pub modifiers: String,
    pub diagnosis_pointers: String,
    pub units: i32,
    pub charge_cents: i64,
    pub rendering_npi: String,
}

/// One `payer_rules` row.
#[derive(Debug)]
pub(crate) struct RulesRow {
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
pub(crate) struct ParkedRow {
    pub sequence: i64,
    pub subject: String,
    pub chain: Option<Uuid>,
    pub error: String,
    pub payload: Option<Vec<u8>>,
}

impl ParkedRow {
    /// The parked row of `item`, should it have to be parked whole; the caller sets `error`.
    pub(crate) fn of(item: &ReplayItem) -> Self {
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
pub(crate) struct BatchChanges {
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

/// The fold state of one session during a batch.
#[derive(Debug)]
pub(crate) struct SessionFold {
    clinic: Uuid,
    pub(crate) state: Session,
    events: Commit,
    pub(crate) last_sequence: u64,
    previous: Option<Footprint>,
    /// Whether the stored state was completed at some point, so a claim may be stored for it;
    /// otherwise a claim derived now is new and is written like one.
    completed_before: bool,
    /// The claim derived at the batch's last completion of this session, if any.
    pub(crate) claim: Option<ClaimRow>,
}

/// Folds `items` (all above the checkpoint, in log order). Takes them by value: a session's events
/// move into its history rather than being copied there.
pub(crate) fn fold_batch(
    items: Vec<ReplayItem>,
    mut stored: HashMap<SessionKey, StoredSession>,
    rules: &mut LogRules,
    directory: &Directory,
    drafts: &[StoredDraft],
) -> Result<BatchChanges, EncodeError> {
    let mut changes = BatchChanges::default();
    // Sized up front for a typical batch (a visit is about six commits): growing a map of folds
    // rehashes and moves every entry, and a fold is large.
    let sessions_hint = items.len() / 4;
    let mut sessions = SessionFolds {
        by_key: HashMap::with_capacity_and_hasher(sessions_hint, Default::default()),
        order: Vec::with_capacity(sessions_hint),
        scratch: Vec::new(),
    };
    for item in items {
        let mut recorded = match item {
            ReplayItem::Invalid {
                sequence,
                subject,
                error,
            } => {
                changes.parked.push(ParkedRow {
                    sequence: to_i64(sequence),
                    subject,
                    chain: None,
                    error: error_chain(&error),
                    payload: None,
                });
                continue;
            }
            ReplayItem::Commit(recorded) => recorded,
        };
        // Counted before a session commit's events move into the session's history.
        let event_count = recorded.commit.events.len() as u64;
        changes.last_recorded_at = Some(recorded.commit.recorded_at.0);
        let outcome = match recorded.commit.aggregate_kind {
            AggregateKind::PayerRules => {
                fold_rules(recorded.sequence, &recorded.commit, rules, &mut changes)
            }
            AggregateKind::Session => fold_session_commit(
                recorded.sequence,
                &mut recorded.commit,
                &mut sessions,
                &mut stored,
                rules,
                directory,
            ),
            AggregateKind::Clinic
            | AggregateKind::Therapist
            | AggregateKind::Payer
            | AggregateKind::Patient
            | AggregateKind::Coverage
            | AggregateKind::Referral => crate::reference::fold_reference(
                recorded.sequence,
                &recorded.commit,
                &mut changes.reference,
            ),
            // Claim lifecycles need their stored state, which the batch write reads.
            AggregateKind::Claim => {
                crate::lifecycle::collect(&recorded, &mut changes.claim_commits)
            }
        };
        match outcome {
            Ok(()) => changes.events += event_count,
            // A commit that is parked was not applied, so it still holds all its events.
            Err(reason) => changes.parked.push(ParkedRow {
                sequence: to_i64(recorded.sequence),
                chain: Some(recorded.commit.chain.as_uuid()),
                error: reason,
                payload: encode(&recorded.commit).ok(),
                subject: recorded.subject,
            }),
        }
    }
    // Claims the batch's rules versions cover are priced by the rule book as the batch leaves it.
    reprice(
        &changes.rules,
        drafts,
        &mut sessions.by_key,
        &mut sessions.order,
        &mut stored,
        rules,
        directory,
    );
    // One row per session folded, and at most one claim each: sized once, so that pushing the
    // (large) rows never regrows and copies the vectors.
    changes.sessions.reserve(sessions.order.len());
    changes.claims.reserve(sessions.order.len());
    for key in sessions.order {
        if let Some(fold) = sessions.by_key.remove(&key) {
            finish_session(key, *fold, directory, &mut changes)?;
        }
    }
    Ok(changes)
}

/// Records the rules versions of a payer-rules commit: all of them, or none and the reason.
fn fold_rules(
    sequence: u64,
    commit: &Commit,
    rules: &mut LogRules,
    changes: &mut BatchChanges,
) -> Result<(), String> {
    let chain = commit.chain.as_uuid();
    let mut prepared: Vec<PreparedVersion> = Vec::new();
    for record in &commit.events {
        if let Event::RulesChanged(changed) = &record.event {
            prepared.push(
                rules
                    .prepare(changed)
                    .map_err(|error| error_chain(&error))?,
            );
        }
    }
    for version in prepared {
        changes.rules.push(RulesRow {
            chain,
            payer: version.payer.as_uuid(),
            version: i32::try_from(version.version()).unwrap_or(i32::MAX),
            payer_key: version.payer_key.clone(),
            effective_from: version.effective_from(),
            rules_toml: version.rules.canonical_toml.clone(),
            content_sha256: version.rules.content_sha256.to_vec(),
            sequence: to_i64(sequence),
        });
        rules.insert(chain, version);
    }
    Ok(())
}

/// The sessions a batch folds.
struct SessionFolds {
    /// Boxed: a fold is almost a kilobyte. Held in the buckets themselves, a batch's folds made
    /// the table megabytes large (each lookup's key comparison on a cache line of its own), and
    /// every fold was moved into the table and out of it again.
    by_key: HashMap<SessionKey, Box<SessionFold>>,
    /// Sessions in first-touch order, so rows are written in a stable order.
    order: Vec<SessionKey>,
    /// A commit's events in the session domain's terms, reused from commit to commit.
    scratch: Vec<SessionEvent>,
}

/// Applies a session commit, starting the session's fold from its stored state on first touch.
/// On success the commit's events have moved into the session's history; on failure the commit is
/// left whole (it is parked).
fn fold_session_commit(
    sequence: u64,
    commit: &mut Commit,
    sessions: &mut SessionFolds,
    stored: &mut HashMap<SessionKey, StoredSession>,
    rules: &LogRules,
    directory: &Directory,
) -> Result<(), String> {
    let key = SessionKey {
        chain: commit.chain.as_uuid(),
        session: commit.aggregate_id.as_uuid(),
    };
    let fold = match sessions.by_key.entry(key) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            let fold = start_fold(commit, stored.get(&key))?;
            stored.remove(&key);
            sessions.order.push(key);
            entry.insert(fold)
        }
    };
    fold_session(
        sequence,
        commit,
        fold,
        rules,
        directory,
        &mut sessions.scratch,
    )
}

/// The fold of a session the batch has not seen yet: from its stored state, or empty. A stored
/// state that does not decode is an error every time, so no commit of that session is applied on
/// top of a hole.
pub(crate) fn start_fold(
    commit: &Commit,
    stored: Option<&StoredSession>,
) -> Result<Box<SessionFold>, String> {
    let clinic = commit
        .clinic
        .ok_or("a session commit must name its clinic")?
        .as_uuid();
    let Some(stored) = stored else {
        return Ok(Box::new(SessionFold {
            clinic,
            state: Session::default(),
            events: history_header(commit),
            last_sequence: 0,
            previous: None,
            completed_before: false,
            claim: None,
        }));
    };
    let events = stored
        .events
        .as_ref()
        .map_err(|reason| format!("the stored state of the session is unusable: {reason}"))?;
    let mut state = Session::default();
    let mut completed_before = false;
    for record in &events.events {
        if let Some(event) = to_domain(clinic, record)? {
            completed_before |= matches!(event, SessionEvent::Completed { .. });
            state.apply(&event);
        }
    }
    Ok(Box::new(SessionFold {
        clinic,
        state,
        events: events.clone(),
        last_sequence: 0,
        previous: Some(stored.footprint.clone()),
        completed_before,
        claim: None,
    }))
}

/// Room for a whole visit's events in a new session's history (scheduled, checked in, a few
/// services and modalities, completed): appending a commit's events then seldom regrows it.
const NEW_HISTORY_CAPACITY: usize = 8;

/// A session history's envelope: the first commit's header, with no events yet (they are added
/// as the fold applies them; cloning the commit whole would copy its events only to drop them).
fn history_header(commit: &Commit) -> Commit {
    Commit {
        command_id: commit.command_id,
        chain: commit.chain,
        clinic: commit.clinic,
        aggregate_kind: commit.aggregate_kind,
        aggregate_id: commit.aggregate_id,
        recorded_at: commit.recorded_at,
        actor: commit.actor.clone(),
        correlation_id: commit.correlation_id,
        causation_id: commit.causation_id,
        events: Vec::with_capacity(NEW_HISTORY_CAPACITY),
    }
}

/// Applies one session commit: converts every event first (into `domain`, a scratch buffer), so a
/// commit is applied whole or parked. Once applied, its events move to the end of the session's
/// history.
fn fold_session(
    sequence: u64,
    commit: &mut Commit,
    fold: &mut SessionFold,
    rules: &LogRules,
    directory: &Directory,
    domain: &mut Vec<SessionEvent>,
) -> Result<(), String> {
    domain.clear();
    for record in &commit.events {
        if let Some(event) = to_domain(fold.clinic, record)? {
            domain.push(event);
        }
    }
    for event in domain.iter() {
        fold.state.apply(event);
        if matches!(event, SessionEvent::Completed { .. }) {
            fold.claim = derive_claim_row(
                commit.chain.as_uuid(),
                commit.aggregate_id.as_uuid(),
                &fold.state,
                rules,
                directory,
                sequence,
            );
        }
    }
    fold.events.events.append(&mut commit.events);
    fold.last_sequence = sequence;
    Ok(())
}

fn to_domain(
    clinic: Uuid,
    record: &claimledger_events::EventRecord,
) -> Result<Option<SessionEvent>, String> {
    let occurred_at = from_micros(record.occurred_at).map_err(|error| error_chain(&error))?;
    from_log_event(clinic.into(), record.event_id, occurred_at, &record.event)
        .map_err(|error| error_chain(&error))
}

/// The session's row, its claim if re-derived, and its unit deltas.
fn finish_session(
    key: SessionKey,
    fold: SessionFold,
    directory: &Directory,
    changes: &mut BatchChanges,
) -> Result<(), EncodeError> {
    let SessionKey {
        chain,
        session: session_id,
    } = key;
    if fold.last_sequence == 0 {
        // Every commit of this session in the batch was parked: nothing changed.
        return Ok(());
    }
    let state = &fold.state;
    let booking = state.booking();
    let time_zone = directory
        .clinic(fold.clinic)
        .and_then(|profile| profile.as_ref().ok())
        .map(|profile| profile.time_zone);
    let date_of_service = time_zone.and_then(|zone| state.date_of_service(zone));
    let units = match &fold.claim {
        Some(claim) => units_of(claim),
        None => fold
            .previous
            .as_ref()
            .map(|previous| previous.units.clone())
            .unwrap_or_default(),
    };
    let footprint = Footprint {
        clinic: Some(fold.clinic),
        therapist: booking.map(|booking| booking.therapist.as_uuid()),
        day: date_of_service,
        units,
    };
    if let Some(previous) = &fold.previous {
        add_units(chain, previous, -1, changes);
    }
    add_units(chain, &footprint, 1, changes);

    let services_json = services_json(state);
    let payer = booking.and_then(|booking| match booking.payment {
        Payment::Payer { payer, .. } => Some(payer.as_uuid()),
        Payment::SelfPay => None,
    });
    let total_units = footprint.units.iter().map(|(_, units)| *units).sum();
    changes.sessions.push(SessionRow {
        chain,
        session: session_id,
        clinic: fold.clinic,
        therapist: footprint.therapist,
        patient: booking.map(|booking| booking.patient.as_uuid()),
        payer,
        status: state.status().as_str(),
        scheduled_start: booking.map(|booking| booking.scheduled_start),
        date_of_service,
        planned_minutes: booking.map(|booking| i32::from(booking.planned_minutes)),
        service_minutes: i32::try_from(state.recorded_service_minutes()).unwrap_or(i32::MAX),
        modality_minutes: state
            .modalities()
            .iter()
            .map(|modality| i32::from(modality.minutes))
            .sum(),
        services_json,
        diagnoses: join(state.diagnoses().iter().map(|code| code.as_str())),
        unit_codes: join(footprint.units.iter().map(|(code, _)| code.as_str())),
        unit_counts: join(footprint.units.iter().map(|(_, units)| units.to_string())),
        total_units,
        last_sequence: to_i64(fold.last_sequence),
        log_events: encode(&fold.events)?,
        stored: fold.previous.is_some(),
        next_stored: Some(StoredSession {
            events: Ok(fold.events),
            footprint,
        }),
    });
    if let Some(claim) = fold.claim {
        if fold.completed_before {
            changes.replaced_claims.push(key);
        }
        changes.claims.push(claim);
    }
    Ok(())
}

/// The `sessions.services` document: what was delivered, serialized straight from borrowed
/// fields (no intermediate `serde_json::Value` tree, which costs an allocation per key).
fn services_json(state: &Session) -> String {
    #[derive(serde::Serialize)]
    struct Service<'a> {
        technique: &'static str,
        code: &'a str,
        minutes: u16,
        #[serde(serialize_with = "as_display")]
        body_region: &'a BodyRegion,
        body_side: Option<&'static str>,
        description: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Modality<'a> {
        code: &'a str,
        minutes: u16,
    }
    #[derive(serde::Serialize)]
    struct Document<'a> {
        services: Vec<Service<'a>>,
        modalities: Vec<Modality<'a>>,
    }
    let document = Document {
        services: state
            .services()
            .iter()
            .map(|service| Service {
                technique: service.technique.name(),
                code: service.code.as_str(),
                minutes: service.minutes,
                body_region: &service.body_region,
                body_side: service.body_side.map(|side| side.as_str()),
                description: service.description.as_deref(),
            })
            .collect(),
        modalities: state
            .modalities()
            .iter()
            .map(|modality| Modality {
                code: modality.code.as_str(),
                minutes: modality.minutes,
            })
            .collect(),
    };
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_string(&document).unwrap_or_default()
}

/// The `claims.findings` document, serialized straight from the findings (no `serde_json::Value`
/// tree, no `String` per enum name). Keys in the order jsonb stores them.
fn findings_json(findings: &[Finding]) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        #[serde(serialize_with = "as_debug")]
        code: &'a claimledger_billing::FindingCode,
        field: &'a str,
        message: &'a str,
        #[serde(serialize_with = "as_debug")]
        severity: &'a claimledger_billing::Severity,
    }
    let documents: Vec<Document<'_>> = findings
        .iter()
        .map(|finding| Document {
            code: &finding.code,
            field: &finding.field,
            message: &finding.message,
            severity: &finding.severity,
        })
        .collect();
    // Serializing plain structs of strings cannot fail.
    serde_json::to_string(&documents).unwrap_or_default()
}

/// Serializes a value as its `Debug` text (the enum variant's name), written straight into the
/// output.
fn as_debug<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{value:?}"))
}

/// Serializes a value as its `Display` text, written straight into the output (no `String`).
fn as_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn add_units(chain: Uuid, footprint: &Footprint, sign: i64, changes: &mut BatchChanges) {
    let Some(day) = footprint.day else {
        return;
    };
    let total: i64 = footprint
        .units
        .iter()
        .map(|(_, units)| i64::from(*units))
        .sum();
    if let Some(therapist) = footprint.therapist
        && total != 0
    {
        *changes
            .therapist_day
            .entry((chain, therapist, day))
            .or_default() += sign * total;
    }
    if let Some(clinic) = footprint.clinic {
        for (code, units) in &footprint.units {
            *changes
                .clinic_code_day
                .entry((chain, clinic, code.clone(), day))
                .or_default() += sign * i64::from(*units);
        }
    }
}

fn units_of(claim: &ClaimRow) -> Units {
    let mut units: BTreeMap<&str, i32> = BTreeMap::new();
    for line in &claim.lines {
        *units.entry(line.code.as_str()).or_default() += line.units;
    }
    units
        .into_iter()
        .map(|(code, units)| (code.to_owned(), units))
        .collect()
}

/// Derives the draft claim of a completed session billed to a payer; `None` for self-pay.
pub(crate) fn derive_claim_row(
    chain: Uuid,
    session_id: Uuid,
    session: &Session,
    rules: &LogRules,
    directory: &Directory,
    sequence: u64,
) -> Option<ClaimRow> {
    let booking = session.booking()?;
    let Payment::Payer { payer, .. } = booking.payment else {
        return None;
    };
    let clinic = booking.clinic.as_uuid();
    let therapist = booking.therapist.as_uuid();
    let mut row = ClaimRow {
        chain,
        session: session_id,
        payer: payer.as_uuid(),
        clinic,
        therapist,
        patient: booking.patient.as_uuid(),
        date_of_service: None,
        payer_key: None,
        rules_version: None,
        rules_sha256: None,
        place_of_service: None,
        billing_npi: None,
        tax_id: None,
        diagnoses: join(session.diagnoses().iter().map(|code| code.as_str())),
        total_charge_cents: 0,
        findings_json: "[]".to_owned(),
        derivation_error: None,
        last_sequence: to_i64(sequence),
        lines: Vec::new(),
    };
    let profile = match directory.clinic(clinic) {
        Some(Ok(profile)) => profile,
        Some(Err(reason)) => return Some(row.failed(format!("clinic {clinic}: {reason}"))),
        None => return Some(row.failed(format!("clinic {clinic} is not in the directory"))),
    };
    let date_of_service = session.date_of_service(profile.time_zone)?;
    row.date_of_service = Some(date_of_service);
    row.place_of_service = Some(profile.place_of_service.to_string());
    row.billing_npi = Some(profile.npi.as_str().to_owned());
    row.tax_id = Some(profile.tax_id.as_str().to_owned());
    let rendering_npi = match directory.therapist(therapist) {
        Some(Ok(npi)) => *npi,
        Some(Err(reason)) => return Some(row.failed(format!("therapist {therapist}: {reason}"))),
        None => {
            return Some(row.failed(format!("therapist {therapist} is not in the directory")));
        }
    };
    let Some(in_force) = rules.in_force(chain, payer, date_of_service) else {
        return Some(row.failed(format!(
            "no rules of payer {payer} are in force on {date_of_service}"
        )));
    };
    let policy = in_force.policy;
    row.payer_key = Some(in_force.payer_key.to_owned());
    row.rules_version = Some(i32::try_from(in_force.version).unwrap_or(i32::MAX));
    row.rules_sha256 = Some(in_force.content_sha256.to_vec());
    let facts = VisitFacts {
        clinic_time_zone: profile.time_zone,
        place_of_service: profile.place_of_service,
        clinic_npi: profile.npi,
        tax_id: profile.tax_id,
        rendering_npi,
        // The booking's referral is not carried onto the claim: payers that require one get a
        // scrubber finding on every claim, valid referral or not.
        referral: None,
        primary_code: None,
    };
    // `date_of_service` above already returned for sessions that are not completed.
    let visit = completed_visit(session, &facts).ok()?;
    let reference = rules.reference();
    let derived = match derive_claim(&visit, policy, reference, in_force.charge_master) {
        Ok(derived) => derived,
        Err(error) => return Some(row.failed(error.to_string())),
    };
    row.findings_json = findings_json(&scrub(&derived.claim, &visit, policy, reference));
    row.diagnoses = join(derived.claim.diagnoses.iter().map(|code| code.as_str()));
    row.total_charge_cents = derived.claim.total_charge.0;
    row.lines = derived
        .claim
        .lines
        .iter()
        .map(|line| LineRow {
            code: line.code.as_str().to_owned(),
            modifiers: join(line.modifiers.iter().map(|modifier| modifier.as_str())),
            diagnosis_pointers: line
                .diagnosis_pointers
                .iter()
                .map(|pointer| pointer.letter())
                .collect(),
            units: i32::try_from(line.units).unwrap_or(i32::MAX),
            charge_cents: line.charge.0,
            rendering_npi: line.rendering_npi.as_str().to_owned(),
        })
        .collect();
    Some(row)
}

impl ClaimRow {
    fn failed(mut self, reason: String) -> Self {
        self.derivation_error = Some(reason);
        self
    }
}

/// Joins values with commas; the SQL side splits them with `string_to_array(.., ',')`.
fn join<T: AsRef<str>>(values: impl Iterator<Item = T>) -> String {
    let mut text = String::new();
    for (index, value) in values.enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(value.as_ref());
    }
    text
}

fn to_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

pub(crate) use claimledger_log::error_chain;
