//! The comparison of two derivations of the same claims (under the log's rules, and under the
//! log's rules plus the proposed versions): the claims whose code, units, modifiers or expected
//! payment change, totals per clinic, payer and code, and which changed claims can still be
//! (re)submitted within the payer's filing limit. Pure: every date is an input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use claimledger_derive::derived::DerivedClaim;
use serde::Serialize;
use uuid::Uuid;

use crate::proposal::ProposedVersion;

/// A claim's key: chain, session, payer.
pub type ClaimKey = (Uuid, Uuid, Uuid);

/// Which claims are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// Only this chain, when given.
    pub chain: Option<Uuid>,
    /// First date of service (inclusive), when given.
    pub from: Option<NaiveDate>,
    /// Last date of service (inclusive), when given.
    pub to: Option<NaiveDate>,
    /// The date timely filing is judged on.
    pub as_of: NaiveDate,
}

impl Scope {
    /// True when a claim with this date of service is compared. A claim without a date (its
    /// clinic is unknown) is compared only when no date range is given.
    pub fn contains(&self, date_of_service: Option<NaiveDate>) -> bool {
        match date_of_service {
            Some(day) => {
                self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
            }
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// One claim as one derivation prices it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pricing {
    /// The rules version used, if any was in force.
    pub rules_version: Option<u32>,
    /// The lines: code, units, modifiers and expected allowed cents.
    pub lines: Vec<PricedLine>,
    /// The sum of the lines' expected allowed amounts, in cents.
    pub expected_payment_cents: i64,
    /// Why no claim could be derived, if so.
    pub derivation_error: Option<String>,
}

/// One line of a [`Pricing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricedLine {
    /// The CPT code.
    pub code: String,
    /// Units.
    pub units: i32,
    /// Modifiers in line order.
    pub modifiers: Vec<String>,
    /// The engine's expected allowed amount, in cents.
    pub expected_allowed_cents: i64,
}

/// What changed on a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The codes billed (a line's code, or lines added or removed).
    Code,
    /// The units of the lines.
    Units,
    /// The modifiers of the lines.
    Modifiers,
    /// The expected payment.
    ExpectedPayment,
    /// Whether the claim can be derived at all.
    Derivation,
}

impl Change {
    /// The name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Code => "code",
            Change::Units => "units",
            Change::Modifiers => "modifiers",
            Change::ExpectedPayment => "expected_payment",
            Change::Derivation => "derivation",
        }
    }
}

/// A claim the proposed rules would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedClaim {
    /// The tenant.
    pub chain: Uuid,
    /// The session billed.
    pub session: Uuid,
    /// The payer billed.
    pub payer: Uuid,
    /// The payer's rules key.
    pub payer_key: Option<String>,
    /// The clinic.
    pub clinic: Uuid,
    /// The date of service.
    pub date_of_service: Option<NaiveDate>,
    /// `draft`, or `submitted` when the log records a submission.
    pub status: &'static str,
    /// What changes.
    pub changes: Vec<Change>,
    /// Under the log's rules.
    pub before: Pricing,
    /// Under the log's rules plus the proposed versions.
    pub after: Pricing,
    /// Expected payment after minus before, in cents.
    pub delta_cents: i64,
    /// The last day the payer accepts the claim (date of service plus the filing limit of the
    /// version in force after the change).
    pub filing_deadline: Option<NaiveDate>,
    /// True when `as_of` is on or before the filing deadline: the claim can be (re)submitted.
    pub resubmittable: bool,
}

/// Totals of one clinic, payer and code, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Total {
    /// The clinic.
    pub clinic: Uuid,
    /// The payer's rules key (or its id when no rules were in force).
    pub payer: String,
    /// The CPT code.
    pub code: String,
    /// Claims with a line of this code, before.
    pub claims_before: u64,
    /// Claims with a line of this code, after.
    pub claims_after: u64,
    /// Units of this code, before.
    pub units_before: i64,
    /// Units of this code, after.
    pub units_after: i64,
    /// Expected payment for this code, before, in cents.
    pub expected_before_cents: i64,
    /// Expected payment for this code, after, in cents.
    pub expected_after_cents: i64,
    /// After minus before, in cents.
    pub delta_cents: i64,
}

/// How long the replay took, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Timings {
    /// Reading the log.
    pub read_log_ms: u64,
    /// Both derivations and the comparison.
    pub derive_ms: u64,
    /// The whole replay.
    pub total_ms: u64,
}

impl Timings {
    /// Milliseconds of a duration, saturating.
    pub fn millis(duration: Duration) -> u64 {
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The whole answer of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// What was compared.
    pub scope: Scope,
    /// The log positions read.
    pub log_positions: u64,
    /// The versions the proposal adds to the log's rules.
    pub proposed: Vec<ProposedVersion>,
    /// Claims compared (in scope).
    pub claims_compared: u64,
    /// The claims that change, in chain, date and session order.
    pub changed: Vec<ChangedClaim>,
    /// Totals per clinic, payer and code over every claim compared.
    pub totals: Vec<Total>,
    /// How long it took.
    pub timings: Timings,
}

impl ReplayReport {
    /// Changed claims that can still be (re)submitted.
    pub fn resubmittable(&self) -> usize {
        self.changed
            .iter()
            .filter(|claim| claim.resubmittable)
            .count()
    }
}

/// Compares the claims of two derivations of the same log. `submitted` holds the claims the log
/// records as submitted; everything else is a draft.
pub fn compare(
    before: &[DerivedClaim],
    after: &[DerivedClaim],
    submitted: &HashSet<ClaimKey>,
    scope: Scope,
) -> (u64, Vec<ChangedClaim>, Vec<Total>) {
    let before: BTreeMap<ClaimKey, &DerivedClaim> =
        before.iter().map(|claim| (key(claim), claim)).collect();
    let mut comparison = Comparison::new(scope);
    for claim in after {
        let Some(old) = before.get(&key(claim)) else {
            continue;
        };
        comparison.add(old, claim, submitted.contains(&key(claim)));
    }
    comparison.finish()
}

fn key(claim: &DerivedClaim) -> ClaimKey {
    (claim.chain, claim.session, claim.payer)
}

/// The comparison built one claim at a time, as a streamed replay settles them: what
/// [`compare`] computes over two whole derivations, with claims that can also be taken back out
/// (a session set aside and then amended is settled again).
#[derive(Debug)]
pub struct Comparison {
    scope: Scope,
    compared: u64,
    changed: HashMap<ClaimKey, ChangedClaim>,
    totals: BTreeMap<(Uuid, String, String), Total>,
}

impl Comparison {
    /// Nothing compared yet.
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            compared: 0,
            changed: HashMap::new(),
            totals: BTreeMap::new(),
        }
    }

    fn in_scope(&self, claim: &DerivedClaim) -> bool {
        self.scope.chain.is_none_or(|chain| chain == claim.chain)
            && self.scope.contains(claim.date_of_service)
    }

    /// Counts one claim, derived before and after, if it is in scope.
    pub fn add(&mut self, old: &DerivedClaim, claim: &DerivedClaim, submitted: bool) {
        if !self.in_scope(claim) {
            return;
        }
        self.compared += 1;
        let payer = payer_label(old, claim);
        add_totals(&mut self.totals, old, &payer, Side::Before, 1);
        add_totals(&mut self.totals, claim, &payer, Side::After, 1);
        let changes = changes(old, claim);
        if changes.is_empty() {
            return;
        }
        let filing_deadline = claim
            .date_of_service
            .zip(claim.timely_filing_days)
            .and_then(|(day, limit)| day.checked_add_days(Days::new(u64::from(limit))));
        let before = pricing(old);
        let after = pricing(claim);
        self.changed.insert(
            key(claim),
            ChangedClaim {
                chain: claim.chain,
                session: claim.session,
                payer: claim.payer,
                payer_key: claim.payer_key.clone().or_else(|| old.payer_key.clone()),
                clinic: claim.clinic,
                date_of_service: claim.date_of_service,
                status: if submitted { "submitted" } else { "draft" },
                changes,
                delta_cents: after.expected_payment_cents - before.expected_payment_cents,
                before,
                after,
                filing_deadline,
                resubmittable: filing_deadline.is_some_and(|deadline| self.scope.as_of <= deadline),
            },
        );
    }

    /// Takes back a claim [`Self::add`] counted (with the same derivations); returns whether it
    /// was listed as submitted.
    pub fn retract(&mut self, old: &DerivedClaim, claim: &DerivedClaim) -> bool {
        if !self.in_scope(claim) {
            return false;
        }
        self.compared -= 1;
        let payer = payer_label(old, claim);
        add_totals(&mut self.totals, old, &payer, Side::Before, -1);
        add_totals(&mut self.totals, claim, &payer, Side::After, -1);
        // A total exists because some claim has a line of its code; one left with none is gone.
        self.totals
            .retain(|_, total| total.claims_before != 0 || total.claims_after != 0);
        self.changed
            .remove(&key(claim))
            .is_some_and(|changed| changed.status == "submitted")
    }

    /// Marks a listed claim as submitted; returns false when it is not listed.
    pub fn mark_submitted(&mut self, key: &ClaimKey) -> bool {
        let Some(changed) = self.changed.get_mut(key) else {
            return false;
        };
        changed.status = "submitted";
        true
    }

    /// Claims counted so far.
    pub fn compared(&self) -> u64 {
        self.compared
    }

    /// Claims compared, the changed ones in chain, date and session order, and the totals.
    pub fn finish(self) -> (u64, Vec<ChangedClaim>, Vec<Total>) {
        let mut changed: Vec<ChangedClaim> = self.changed.into_values().collect();
        changed.sort_by_key(|claim| {
            (
                claim.chain,
                claim.date_of_service,
                claim.session,
                claim.payer,
            )
        });
        let totals = self
            .totals
            .into_values()
            .map(|mut total| {
                total.delta_cents = total.expected_after_cents - total.expected_before_cents;
                total
            })
            .collect();
        (self.compared, changed, totals)
    }
}

/// The payer a claim's totals are kept under: its rules key, or its id without rules.
fn payer_label(old: &DerivedClaim, claim: &DerivedClaim) -> String {
    claim
        .payer_key
        .clone()
        .or_else(|| old.payer_key.clone())
        .unwrap_or_else(|| claim.payer.to_string())
}

fn pricing(claim: &DerivedClaim) -> Pricing {
    Pricing {
        rules_version: claim.rules_version,
        lines: claim
            .lines
            .iter()
            .map(|line| PricedLine {
                code: line.code.clone(),
                units: line.units,
                modifiers: line.modifiers.clone(),
                expected_allowed_cents: line.expected_allowed_cents,
            })
            .collect(),
        expected_payment_cents: claim.expected_payment_cents(),
        derivation_error: claim.derivation_error.clone(),
    }
}

/// What differs between two derivations of one claim: lines are compared in line order.
fn changes(before: &DerivedClaim, after: &DerivedClaim) -> Vec<Change> {
    let mut changes = Vec::new();
    let codes = |claim: &DerivedClaim| -> Vec<String> {
        claim.lines.iter().map(|line| line.code.clone()).collect()
    };
    let units =
        |claim: &DerivedClaim| -> Vec<i32> { claim.lines.iter().map(|line| line.units).collect() };
    let modifiers = |claim: &DerivedClaim| -> Vec<Vec<String>> {
        claim
            .lines
            .iter()
            .map(|line| line.modifiers.clone())
            .collect()
    };
    if before.derivation_error.is_some() != after.derivation_error.is_some() {
        changes.push(Change::Derivation);
    }
    if codes(before) != codes(after) {
        changes.push(Change::Code);
    }
    if units(before) != units(after) {
        changes.push(Change::Units);
    }
    if modifiers(before) != modifiers(after) {
        changes.push(Change::Modifiers);
    }
    if before.expected_payment_cents() != after.expected_payment_cents() {
        changes.push(Change::ExpectedPayment);
    }
    changes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

fn add_totals(
    totals: &mut BTreeMap<(Uuid, String, String), Total>,
    claim: &DerivedClaim,
    payer: &str,
    side: Side,
    sign: i64,
) {
    let mut counted: HashSet<&str> = HashSet::new();
    for line in &claim.lines {
        let total = totals
            .entry((claim.clinic, payer.to_owned(), line.code.clone()))
            .or_insert_with(|| Total {
                clinic: claim.clinic,
                payer: payer.to_owned(),
                code: line.code.clone(),
                claims_before: 0,
                claims_after: 0,
                units_before: 0,
                units_after: 0,
                expected_before_cents: 0,
                expected_after_cents: 0,
                delta_cents: 0,
            });
        let first_line_of_code = counted.insert(line.code.as_str());
        let (claims, units, expected) = match side {
            Side::Before => (
                &mut total.claims_before,
                &mut total.units_before,
                &mut total.expected_before_cents,
            ),
            Side::After => (
                &mut total.claims_after,
                &mut total.units_after,
                &mut total.expected_after_cents,
            ),
        };
        if first_line_of_code {
            *claims = claims.saturating_add_signed(sign);
        }
        *units += sign * i64::from(line.units);
        *expected += sign * line.expected_allowed_cents;
    }
}

#[cfg(test)]
mod tests {
    use claimledger_derive::derived::DerivedLine;

    use super::*;

    fn claim(session: u128, lines: &[(&str, i32, i64)]) -> DerivedClaim {
        DerivedClaim {
            chain: Uuid::from_u128(1),
            session: Uuid::from_u128(session),
            payer: Uuid::from_u128(2),
            clinic: Uuid::from_u128(3),
            date_of_service: NaiveDate::from_ymd_opt(2025, 10, 1),
            payer_key: Some("lakeshore-mutual".to_owned()),
            rules_version: Some(1),
            timely_filing_days: Some(90),
            derivation_error: None,
            lines: lines
                .iter()
                .map(|(code, units, allowed)| DerivedLine {
                    code: (*code).to_owned(),
                    modifiers: Vec::new(),
                    units: *units,
                    charge_cents: *allowed,
                    expected_allowed_cents: *allowed,
                })
                .collect(),
        }
    }

    fn scope(as_of: NaiveDate) -> Scope {
        Scope {
            chain: None,
            from: None,
            to: None,
            as_of,
        }
    }

    #[test]
    fn only_claims_whose_code_units_modifiers_or_payment_differ_are_listed() {
        let before = vec![
            claim(10, &[("97140", 2, 7700)]),
            claim(11, &[("97124", 1, 3100)]),
        ];
        let mut after = vec![
            claim(10, &[("97124", 2, 6600)]),
            claim(11, &[("97124", 1, 3100)]),
        ];
        after[1].rules_version = Some(2);
        let day = NaiveDate::from_ymd_opt(2025, 12, 1).expect("a date");
        let (compared, changed, totals) = compare(&before, &after, &HashSet::new(), scope(day));
        assert_eq!(compared, 2);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].session, Uuid::from_u128(10));
        assert_eq!(
            changed[0].changes,
            vec![Change::Code, Change::ExpectedPayment]
        );
        assert_eq!(changed[0].delta_cents, -1100);
        let by_code: BTreeMap<&str, (u64, u64, i64)> = totals
            .iter()
            .map(|total| {
                (
                    total.code.as_str(),
                    (total.claims_before, total.claims_after, total.delta_cents),
                )
            })
            .collect();
        assert_eq!(by_code["97140"], (1, 0, -7700));
        assert_eq!(by_code["97124"], (1, 2, 6600));
    }

    #[test]
    fn a_changed_claim_is_resubmittable_through_its_filing_deadline_only() {
        let before = vec![claim(10, &[("97140", 2, 7700)])];
        let after = vec![claim(10, &[("97140", 2, 8000)])];
        // 2025-10-01 plus 90 days is 2025-12-30.
        let deadline = NaiveDate::from_ymd_opt(2025, 12, 30).expect("a date");
        let (_, on_deadline, _) = compare(&before, &after, &HashSet::new(), scope(deadline));
        assert_eq!(on_deadline[0].filing_deadline, Some(deadline));
        assert!(on_deadline[0].resubmittable);
        let late = deadline.succ_opt().expect("a date");
        let (_, after_deadline, _) = compare(&before, &after, &HashSet::new(), scope(late));
        assert!(!after_deadline[0].resubmittable);
    }

    #[test]
    fn the_date_range_and_the_chain_limit_what_is_compared() {
        let before = vec![claim(10, &[("97140", 2, 7700)])];
        let after = vec![claim(10, &[("97140", 2, 8000)])];
        let as_of = NaiveDate::from_ymd_opt(2025, 12, 1).expect("a date");
        let later = Scope {
            from: NaiveDate::from_ymd_opt(2025, 10, 2),
            ..scope(as_of)
        };
        assert_eq!(compare(&before, &after, &HashSet::new(), later).0, 0);
        let other_chain = Scope {
            chain: Some(Uuid::from_u128(99)),
            ..scope(as_of)
        };
        assert_eq!(compare(&before, &after, &HashSet::new(), other_chain).0, 0);
        let submitted: HashSet<ClaimKey> =
            [(Uuid::from_u128(1), Uuid::from_u128(10), Uuid::from_u128(2))].into();
        let (_, changed, _) = compare(&before, &after, &submitted, scope(as_of));
        assert_eq!(changed[0].status, "submitted");
    }
}
