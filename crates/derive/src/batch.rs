//! The in-memory fold of one batch: log positions in, changed rows out.
//!
//! Pure apart from its inputs: the stored state of the sessions the batch continues, the rule book
//! as recorded so far (which the batch extends with its own `RulesChanged` events), the provider
//! directory and the stored drafts its rules changes re-price. Each commit goes to the fold of its
//! aggregate kind; a commit that cannot be applied is parked whole, with the reason.

use std::collections::hash_map::Entry;

use claimledger_events::{
    AggregateKind, Commit, EncodeError, Event, ReplayItem, encode, error_chain,
};
use claimledger_sessions::event::SessionEvent;

use crate::directory::Directory;
use crate::hashing::HashMap;
use crate::keys::SessionKey;
use crate::reprice::{StoredDraft, reprice};
use crate::rows::{BatchChanges, ParkedRow, RulesRow, StoredSession, to_i64};
use crate::rules::{LogRules, PreparedVersion};
use crate::session::{SessionFold, finish_session, fold_session, start_fold};

/// Folds `items` (all above the checkpoint, in log order). Takes them by value: a session's events
/// move into its history rather than being copied there.
pub fn fold_batch(
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
