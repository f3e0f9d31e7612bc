//! One session's fold: its stored state taken up, a batch's commits applied with the session
//! domain's own `apply`, a claim derived at each completion with the rules the log had recorded up
//! to that commit, and at the end the session's row and its unit deltas. Unit totals move as deltas
//! against the session's previous footprint, so an amended claim moves its units rather than adding
//! them twice.

use std::collections::BTreeMap;

use claimledger_events::{Commit, EncodeError, encode, error_chain};
use claimledger_sessions::body::BodyRegion;
use claimledger_sessions::command::Payment;
use claimledger_sessions::event::SessionEvent;
use claimledger_sessions::schema::{from_log_event, from_micros};
use claimledger_sessions::session::Session;
use uuid::Uuid;

use crate::claim::derive_claim_row;
use crate::directory::Directory;
use crate::keys::SessionKey;
use crate::rows::{
    BatchChanges, ClaimRow, Footprint, SessionRow, StoredSession, Units, join, to_i64,
};
use crate::rules::LogRules;

/// The fold state of one session during a batch.
#[derive(Debug)]
pub struct SessionFold {
    clinic: Uuid,
    pub state: Session,
    events: Commit,
    pub last_sequence: u64,
    previous: Option<Footprint>,
    /// Whether the stored state was completed at some point, so a claim may be stored for it;
    /// otherwise a claim derived now is new and is written like one.
    completed_before: bool,
    /// The claim derived at the batch's last completion of this session, if any.
    pub claim: Option<ClaimRow>,
}

/// The fold of a session the batch has not seen yet: from its stored state, or empty. A stored
/// state that does not decode is an error every time, so no commit of that session is applied on
/// top of a hole.
pub fn start_fold(
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
pub fn fold_session(
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

pub(crate) fn to_domain(
    clinic: Uuid,
    record: &claimledger_events::EventRecord,
) -> Result<Option<SessionEvent>, String> {
    let occurred_at = from_micros(record.occurred_at).map_err(|error| error_chain(&error))?;
    from_log_event(clinic.into(), record.event_id, occurred_at, &record.event)
        .map_err(|error| error_chain(&error))
}

/// The session's row, its claim if re-derived, and its unit deltas.
pub fn finish_session(
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
