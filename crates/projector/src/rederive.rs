//! Re-deriving claims: draft claims re-priced when a payer's rules change, and the same derivation
//! offered as a pure function for `claimledger replay`.
//!
//! A claim is first derived when its session completes, with the rules the log has recorded so far.
//! A `RulesChanged` recorded later whose `effective_from` covers earlier dates of service would
//! otherwise leave those claims priced by the old version, so the projection would depend on the
//! order in which rules and sessions reached the log. Instead, every batch that records a rules
//! version for (chain, payer) effective from day D re-derives, in the same transaction, every claim
//! of that chain and payer with a date of service on or after D that is still `draft`: those
//! derived earlier in the batch, and those stored by earlier batches ([`load_drafts`]). Submitted
//! claims keep what was submitted. Live projection, rebuild and replay therefore all mean "each
//! draft claim priced by the newest rules version in force on its date of service".
//!
//! [`derive_claims`] folds a log in memory exactly as one projector batch would (same fold, same
//! re-pricing) and returns the claims with the payer-rules engine's expected allowed amount per
//! line, so a replay under proposed rules is the projector's own derivation, not a second copy.

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use claimledger_events::{AggregateKind, EncodeError, Event, PayerId};
use claimledger_log::ReplayItem;
use claimledger_payer_rules::{LineQuery, RulesSelector, VisitContext};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::directory::Directory;
use crate::error::ProjectorError;
use crate::fold::{
    ClaimRow, RulesRow, SessionFold, SessionKey, StoredSession, derive_claim_row, fold_batch,
    start_fold,
};
use crate::hashing::{HashMap, HashSet};
use crate::rules::{LogRules, epoch_day_to_date};

/// A draft claim stored by an earlier batch that a rules change in this batch may re-price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredDraft {
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
pub(crate) fn has_rules_changes(items: &[ReplayItem]) -> bool {
    !batch_rules_changes(items).is_empty()
}

/// `(chain, payer, effective_from)` of every rules version the batch records.
fn batch_rules_changes(items: &[ReplayItem]) -> Vec<(Uuid, Uuid, NaiveDate)> {
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

/// Reads the stored draft claims that the batch's rules versions may re-price: same chain and
/// payer, date of service on or after the version's `effective_from`, status `draft`. Runs inside
/// the batch transaction; no query when the batch records no rules.
pub(crate) async fn load_drafts(
    connection: &mut PgConnection,
    schema: &str,
    items: &[ReplayItem],
) -> Result<Vec<StoredDraft>, ProjectorError> {
    let changes = batch_rules_changes(items);
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let chains: Vec<Uuid> = changes.iter().map(|change| change.0).collect();
    let payers: Vec<Uuid> = changes.iter().map(|change| change.1).collect();
    let days: Vec<NaiveDate> = changes.iter().map(|change| change.2).collect();
    let rows: Vec<(Uuid, Uuid, Uuid, Uuid, NaiveDate, i64, i64)> = sqlx::query_as(&format!(
        "SELECT DISTINCT c.chain_id, c.session_id, c.payer_id, s.clinic_id, c.date_of_service, \
                s.last_sequence, c.last_sequence \
         FROM {schema}.claims c \
         JOIN UNNEST($1::uuid[], $2::uuid[], $3::date[]) AS k(chain_id, payer_id, day) \
           ON c.chain_id = k.chain_id AND c.payer_id = k.payer_id AND c.date_of_service >= k.day \
         JOIN {schema}.sessions s ON s.chain_id = c.chain_id AND s.session_id = c.session_id \
         WHERE c.status = 'draft' \
         ORDER BY c.chain_id, c.session_id"
    ))
    .bind(chains)
    .bind(payers)
    .bind(days)
    .persistent(false)
    .fetch_all(connection)
    .await
    .map_err(ProjectorError::db("reading draft claims to re-price"))?;
    Ok(rows
        .into_iter()
        .map(
            |(chain, session, payer, clinic, date_of_service, session_sequence, claim_sequence)| {
                StoredDraft {
                    key: SessionKey { chain, session },
                    payer,
                    clinic,
                    date_of_service,
                    session_sequence: u64::try_from(session_sequence).unwrap_or(0),
                    claim_sequence: u64::try_from(claim_sequence).unwrap_or(0),
                }
            },
        )
        .collect())
}

/// Adds the drafts' sessions to those whose stored state the batch reads, and their clinics to
/// the directory lookups.
pub(crate) fn add_references(
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
pub(crate) fn reprice(
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

/// One claim as the projector derives it, with what a replay compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedClaim {
    /// The tenant.
    pub chain: Uuid,
    /// The session billed.
    pub session: Uuid,
    /// The payer billed.
    pub payer: Uuid,
    /// The clinic.
    pub clinic: Uuid,
    /// The date of service, when the clinic is known.
    pub date_of_service: Option<NaiveDate>,
    /// The payer's rules key, when rules were in force.
    pub payer_key: Option<String>,
    /// The rules version used.
    pub rules_version: Option<u32>,
    /// The payer's filing limit in days under that version.
    pub timely_filing_days: Option<u32>,
    /// Why no claim could be derived, if so (then there are no lines).
    pub derivation_error: Option<String>,
    /// The CMS-1500 item-24 lines, in line order.
    pub lines: Vec<DerivedLine>,
}

impl DerivedClaim {
    /// The expected payment: the sum of the lines' expected allowed amounts, in cents.
    pub fn expected_payment_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|line| line.expected_allowed_cents)
            .sum()
    }
}

/// One line of a [`DerivedClaim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedLine {
    /// The CPT code.
    pub code: String,
    /// Modifiers in line order.
    pub modifiers: Vec<String>,
    /// Units.
    pub units: i32,
    /// The line charge in cents.
    pub charge_cents: i64,
    /// What the payer-rules engine expects the payer to allow for the line, in cents (0 when the
    /// engine rejects it).
    pub expected_allowed_cents: i64,
}

/// Folds `items` (in log order) in memory as one projector batch over empty read models would,
/// recording their rules versions in `rules`, and returns every claim derived, in session order.
/// It writes nothing anywhere.
///
/// This is the projector's own fold, re-pricing included, so its claims equal the draft claims a
/// projector that applied the same positions holds.
pub fn derive_claims(
    items: &[ReplayItem],
    rules: &mut LogRules,
    directory: &Directory,
) -> Result<Vec<DerivedClaim>, EncodeError> {
    // The fold consumes its items; the caller keeps its own (it derives twice, before and after
    // a proposal), and a replay is not the projector's hot path. Positions that are not valid
    // commits derive nothing (the fold only parks them), so only the commits are copied.
    let commits = items
        .iter()
        .filter_map(|item| match item {
            ReplayItem::Commit(recorded) => Some(ReplayItem::Commit(recorded.clone())),
            ReplayItem::Invalid { .. } => None,
        })
        .collect();
    let changes = fold_batch(commits, HashMap::default(), rules, directory, &[])?;
    let mut claims: Vec<DerivedClaim> = changes
        .claims
        .iter()
        .map(|claim| derived(claim, rules))
        .collect();
    claims.sort_by_key(|claim| (claim.chain, claim.session, claim.payer));
    Ok(claims)
}

fn derived(claim: &ClaimRow, rules: &LogRules) -> DerivedClaim {
    let allowed = expected_allowed(claim, rules);
    let timely_filing_days = claim.date_of_service.and_then(|day| {
        rules
            .in_force(claim.chain, PayerId::from(claim.payer), day)
            .map(|in_force| in_force.policy.timely_filing_days)
    });
    DerivedClaim {
        chain: claim.chain,
        session: claim.session,
        payer: claim.payer,
        clinic: claim.clinic,
        date_of_service: claim.date_of_service,
        payer_key: claim.payer_key.clone(),
        rules_version: claim
            .rules_version
            .and_then(|version| u32::try_from(version).ok()),
        timely_filing_days,
        derivation_error: claim.derivation_error.clone(),
        lines: claim
            .lines
            .iter()
            .zip(allowed)
            .map(|(line, expected_allowed_cents)| DerivedLine {
                code: line.code.clone(),
                modifiers: split(&line.modifiers),
                units: line.units,
                charge_cents: line.charge_cents,
                expected_allowed_cents,
            })
            .collect(),
    }
}

/// The engine's expected allowed amount of each line, judged with the claim's other codes under
/// the version the claim was derived with.
///
/// The log does not carry the visit's referral, its number in the year or the submission date yet,
/// so the referral is taken as issued on the date of service and the other episode limits are not
/// applied: the expected payment prices the coding (codes, units, modifiers, bundling, NCCI, fees),
/// and the scrubber's findings on the claim say what the episode still lacks.
fn expected_allowed(claim: &ClaimRow, rules: &LogRules) -> Vec<i64> {
    let zero = vec![0; claim.lines.len()];
    let (Some(date_of_service), Some(version)) = (claim.date_of_service, claim.rules_version)
    else {
        return zero;
    };
    let Some((payer_key, book)) = rules.payer_book(claim.chain, PayerId::from(claim.payer)) else {
        return zero;
    };
    let Ok(version) = u32::try_from(version) else {
        return zero;
    };
    let codes: Vec<Option<CptCode>> = claim
        .lines
        .iter()
        .map(|line| line.code.parse().ok())
        .collect();
    let diagnoses: Vec<Icd10Code> = split(&claim.diagnoses)
        .iter()
        .filter_map(|code| code.parse().ok())
        .collect();
    let context = VisitContext {
        referral_date: Some(date_of_service),
        visit_number_in_year: None,
        submission_date: None,
    };
    claim
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let Some(code) = codes[index] else {
                return 0;
            };
            let modifiers: Vec<Modifier> = split(&line.modifiers)
                .iter()
                .filter_map(|modifier| modifier.parse().ok())
                .collect();
            let others: Vec<CptCode> = codes
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .filter_map(|(_, code)| *code)
                .collect();
            let query = LineQuery {
                date_of_service,
                code,
                units: u32::try_from(line.units).unwrap_or(0),
                modifiers: &modifiers,
                diagnoses: &diagnoses,
                other_codes_on_visit: &others,
                supported_alternatives: &[],
                context,
            };
            book.decide_with(payer_key, RulesSelector::Version(version), &query)
                .map_or(0, |decision| decision.expected_allowed.0)
        })
        .collect()
}

fn split(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}
