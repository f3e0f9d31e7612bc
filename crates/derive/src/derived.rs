//! The projector's derivation offered whole for `claimledger replay`: [`derive_claims`] folds a log
//! in memory exactly as one projector batch would (same fold, same re-pricing) and returns the
//! claims with the payer-rules engine's expected allowed amount per line, so a replay under
//! proposed rules is the projector's own derivation, not a second copy.

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use claimledger_events::{EncodeError, PayerId, ReplayItem};
use claimledger_payer_rules::{LineQuery, RulesSelector, VisitContext};
use uuid::Uuid;

use crate::batch::fold_batch;
use crate::directory::Directory;
use crate::hashing::HashMap;
use crate::rows::ClaimRow;
use crate::rules::LogRules;

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

pub(crate) fn derived(claim: &ClaimRow, rules: &LogRules) -> DerivedClaim {
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
