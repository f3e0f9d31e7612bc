//! Re-pricing: draft claims re-derived when a payer's rules change.
//!
//! A claim is first derived when its session completes, with the rules the log has recorded so far.
//! A `RulesChanged` recorded later whose `effective_from` covers earlier dates of service would
//! otherwise leave those claims priced by the old version, so the projection would depend on the
//! order in which rules and sessions reached the log. Instead, every batch that records a rules
//! version for (chain, payer) effective from day D re-derives every claim of that chain and payer
//! with a date of service on or after D that is still `draft`: those derived earlier in the batch,
//! and the stored ones the store reads for it ([`StoredDraft`]). Submitted claims keep what was
//! submitted. Live projection, rebuild and replay therefore all mean "each draft claim priced by the
//! newest rules version in force on its date of service".

use chrono::NaiveDate;
use claimledger_events::{AggregateKind, Event, ReplayItem};
use uuid::Uuid;

use crate::claim::derive_claim_row;
use crate::directory::Directory;
use crate::hashing::{HashMap, HashSet};
use crate::keys::SessionKey;
use crate::rows::{RulesRow, StoredSession};
use crate::rules::{LogRules, epoch_day_to_date};
use crate::session::{SessionFold, start_fold};

/// A draft claim stored by an earlier batch that a rules change in this batch may re-price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDraft {
    /// Chain and session.
    pub key: SessionKey,
    /// The payer billed.
    pub payer: Uuid,
    /// The session's clinic (its provider data must be in the directory).
    pub clinic: Uuid,
    /// The claim's date of service.
    pub date_of_service: NaiveDate,
    /// The session's last log sequence, kept on its rewritten row.
    pub session_sequence: u64,
    /// The claim's last log sequence (its completion), kept on the re-derived claim.
    pub claim_sequence: u64,
}

/// Whether the batch records any rules change, and so may re-price stored drafts.
pub fn has_rules_changes(items: &[ReplayItem]) -> bool {
    !batch_rules_changes(items).is_empty()
}

/// `(chain, payer, effective_from)` of every rules version the batch records: what the store
/// selects the drafts to re-price by.
pub fn batch_rules_changes(items: &[ReplayItem]) -> Vec<(Uuid, Uuid, NaiveDate)> {
    let mut changes = Vec::new();
    for item in items {
        let ReplayItem::Commit(recorded) = item else {
            continue;
        };
        if recorded.commit.aggregate_kind != AggregateKind::PayerRules {
            continue;
        }
        for record in &recorded.commit.events {
            if let Event::RulesChanged(changed) = &record.event
                && let Some(day) = epoch_day_to_date(changed.effective_from.0)
            {
                changes.push((
                    recorded.commit.chain.as_uuid(),
                    changed.payer.as_uuid(),
                    day,
                ));
            }
        }
    }
    changes
}

/// Adds the drafts' sessions to those whose stored state the batch reads, and their clinics to
/// the directory lookups.
pub fn add_references(
    drafts: &[StoredDraft],
    to_load: &mut Vec<SessionKey>,
    clinics: &mut HashSet<Uuid>,
) {
    let mut loading: HashSet<SessionKey> = to_load.iter().copied().collect();
    for draft in drafts {
        if loading.insert(draft.key) {
            to_load.push(draft.key);
        }
        clinics.insert(draft.clinic);
    }
}

/// Re-derives, with the rule book as it stands after the batch, every claim the batch's recorded
/// rules versions (`recorded`) cover: those derived earlier in the batch and the stored `drafts`.
/// Called by the fold before it turns its session folds into rows, so a re-priced claim moves its
/// units and replaces its lines exactly like an amended one.
pub fn reprice(
    recorded: &[RulesRow],
    drafts: &[StoredDraft],
    folds: &mut HashMap<SessionKey, Box<SessionFold>>,
    order: &mut Vec<SessionKey>,
    stored: &mut HashMap<SessionKey, StoredSession>,
    rules: &LogRules,
    directory: &Directory,
) {
    if recorded.is_empty() {
        return;
    }
    let covers = |chain: Uuid, payer: Uuid, day: Option<NaiveDate>| {
        day.is_some_and(|day| {
            recorded.iter().any(|version| {
                version.chain == chain && version.payer == payer && day >= version.effective_from
            })
        })
    };
    for (key, fold) in folds.iter_mut() {
        let Some(claim) = &fold.claim else {
            continue;
        };
        if covers(claim.chain, claim.payer, claim.date_of_service) {
            let sequence = u64::try_from(claim.last_sequence).unwrap_or(0);
            if let Some(row) = derive_claim_row(
                key.chain,
                key.session,
                &fold.state,
                rules,
                directory,
                sequence,
            ) {
                fold.claim = Some(row);
            }
        }
    }
    for draft in drafts {
        let SessionKey { chain, session } = draft.key;
        // The query selected by every rules version of the batch; one whose commit was parked is
        // not in `recorded` and re-prices nothing.
        if !covers(chain, draft.payer, Some(draft.date_of_service)) {
            continue;
        }
        if let Some(fold) = folds.get_mut(&draft.key) {
            // The batch touched the session without completing it again: its stored claim stays
            // unless the session is still complete.
            if fold.claim.is_none() {
                fold.claim = derive_claim_row(
                    chain,
                    session,
                    &fold.state,
                    rules,
                    directory,
                    draft.claim_sequence,
                )
                .filter(|row| covers(row.chain, row.payer, row.date_of_service));
            }
            continue;
        }
        let Some(stored_session) = stored.remove(&draft.key) else {
            continue;
        };
        let fold = match &stored_session.events {
            Ok(events) => start_fold(events, Some(&stored_session)),
            Err(reason) => Err(reason.clone()),
        };
        let mut fold = match fold {
            Ok(fold) => fold,
            Err(reason) => {
                tracing::warn!(
                    chain_id = %chain,
                    session_id = %session,
                    error.message = %reason,
                    "a draft claim's session cannot be read back; it keeps its old price"
                );
                continue;
            }
        };
        fold.last_sequence = draft.session_sequence;
        fold.claim = derive_claim_row(
            chain,
            session,
            &fold.state,
            rules,
            directory,
            draft.claim_sequence,
        );
        if fold.claim.is_some() {
            folds.insert(draft.key, fold);
            order.push(draft.key);
        }
    }
}
