//! The claim lifecycle: the `Claim` aggregate's commits (submitted, adjudicated, resubmitted,
//! written off) folded onto each claim's stored lifecycle, and what that changes in the monthly
//! rollups.
//!
//! The batch fold only converts each claim commit to domain events ([`collect`]); folding them
//! needs the claims' stored state, which the store reads once the batch's derived claims are
//! written, so a claim derived and submitted in the same batch finds its row. It then calls
//! [`fold_lifecycles`]. The stored state of a claim is its `claims` row and its
//! `claim_line_outcomes` rows: the projection keeps no other copy.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use claimledger_claims::claim::ClaimStatus;
use claimledger_claims::event::ClaimEvent;
use claimledger_claims::schema::from_log_event;
use claimledger_events::{ClaimId, Commit, RecordedCommit, error_chain};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::ClaimKey;
use crate::rollup::{DenialKey, Reimbursement, ReimbursementKey, RollupDeltas, month_of};

/// One claim commit of the batch, converted.
#[derive(Debug)]
pub struct ClaimCommit {
    /// Its stream sequence.
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// The commit as recorded (parked whole when it does not fit).
    pub commit: Commit,
    /// Its events in the claim domain's terms.
    pub events: Vec<ClaimEvent>,
}

impl ClaimCommit {
    /// The claim it is addressed to.
    pub fn key(&self) -> ClaimKey {
        ClaimKey::of(&self.commit)
    }
}

/// Converts a claim commit's events (the fold parks the commit when this fails).
pub fn collect(recorded: &RecordedCommit, out: &mut Vec<ClaimCommit>) -> Result<(), String> {
    let commit = &recorded.commit;
    if commit.clinic.is_none() {
        return Err("a claim commit must name its clinic".to_owned());
    }
    let mut events = Vec::with_capacity(commit.events.len());
    for record in &commit.events {
        match from_log_event(&record.event).map_err(|error| error_chain(&error))? {
            Some(event) => events.push(event),
            None => {
                return Err(format!(
                    "a claim commit holds a {} event",
                    record.event.type_name()
                ));
            }
        }
    }
    out.push(ClaimCommit {
        sequence: recorded.sequence,
        subject: recorded.subject.clone(),
        commit: commit.clone(),
        events,
    });
    Ok(())
}

/// One adjustment as `claim_line_outcomes.adjustments` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittedAdjustment {
    pub group: String,
    pub reason: String,
    pub amount_cents: i64,
}

/// The latest adjudication of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineResult {
    pub allowed_cents: i64,
    pub paid_cents: i64,
    pub patient_responsibility_cents: i64,
    pub paid_units: i32,
    pub adjustments: Vec<RemittedAdjustment>,
}

/// One line of the latest submission and its latest adjudication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeLine {
    pub line_number: i32,
    pub code: String,
    pub modifiers: Vec<String>,
    pub units: i32,
    pub charge_cents: i64,
    pub result: Option<LineResult>,
}

/// A claim's lifecycle as the read models hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub chain: Uuid,
    pub session: Uuid,
    pub payer: Uuid,
    pub clinic: Uuid,
    /// The derived claim's date of service: the month the claim is counted in.
    pub date_of_service: Option<NaiveDate>,
    pub status: ClaimStatus,
    pub submitted_on: Option<NaiveDate>,
    pub adjudicated_on: Option<NaiveDate>,
    pub payer_claim_number: Option<String>,
    pub written_off_cents: i64,
    pub resubmissions: i32,
    pub lines: Vec<OutcomeLine>,
}

impl Lifecycle {
    fn apply(&mut self, event: &ClaimEvent) {
        match event {
            ClaimEvent::Submitted {
                submitted_on,
                lines,
                ..
            } => {
                self.status = ClaimStatus::Submitted;
                self.submitted_on = Some(*submitted_on);
                self.replace_lines(lines);
            }
            ClaimEvent::Adjudicated(adjudication) => {
                self.status = ClaimStatus::after(adjudication);
                self.adjudicated_on = Some(adjudication.adjudicated_on);
                self.payer_claim_number = Some(adjudication.payer_claim_number.clone());
                for outcome in &adjudication.lines {
                    let Some(line) = self
                        .lines
                        .iter_mut()
                        .find(|line| line.line_number == i32::from(outcome.line_number))
                    else {
                        continue;
                    };
                    line.result = Some(LineResult {
                        allowed_cents: outcome.allowed_cents,
                        paid_cents: outcome.paid_cents,
                        patient_responsibility_cents: outcome.patient_responsibility_cents,
                        paid_units: i32::from(outcome.paid_units),
                        adjustments: outcome
                            .adjustments
                            .iter()
                            .map(|adjustment| RemittedAdjustment {
                                group: adjustment.group.as_str().to_owned(),
                                reason: adjustment.reason_code.clone(),
                                amount_cents: adjustment.amount_cents,
                            })
                            .collect(),
                    });
                }
            }
            ClaimEvent::Resubmitted {
                resubmitted_on,
                lines,
                ..
            } => {
                self.status = ClaimStatus::Resubmitted;
                self.resubmissions += 1;
                self.submitted_on = Some(*resubmitted_on);
                self.replace_lines(lines);
            }
            ClaimEvent::WrittenOff { amount_cents, .. } => {
                self.status = ClaimStatus::WrittenOff;
                self.written_off_cents += amount_cents;
            }
        }
    }

    /// A new submission: new lines, and no adjudication answers them yet.
    fn replace_lines(&mut self, lines: &[claimledger_claims::event::ClaimLine]) {
        self.adjudicated_on = None;
        self.payer_claim_number = None;
        self.lines = lines
            .iter()
            .map(|line| OutcomeLine {
                line_number: i32::from(line.line_number),
                code: line.code.as_str().to_owned(),
                modifiers: line
                    .modifiers
                    .iter()
                    .map(|modifier| modifier.as_str().to_owned())
                    .collect(),
                units: i32::from(line.units),
                charge_cents: line.charge_cents,
                result: None,
            })
            .collect();
    }

    /// The sum of `f` over the lines' latest adjudication.
    pub fn total(&self, f: fn(&LineResult) -> i64) -> i64 {
        self.lines
            .iter()
            .filter_map(|line| line.result.as_ref().map(f))
            .sum()
    }
}

/// A touched claim: its state before the batch (for the rollup subtraction) and now.
#[derive(Debug)]
struct Touched {
    before: Lifecycle,
    now: Lifecycle,
}

/// What a batch's claim commits change, folded onto the claims' stored lifecycles.
#[derive(Debug, Default)]
pub struct LifecycleChanges<'a> {
    /// The claims whose lifecycle changed, as they now stand, in first-touch order.
    pub claims: Vec<Lifecycle>,
    /// Their contribution to the rollups: after minus before.
    pub deltas: RollupDeltas,
    /// The commits that do not fit (a claim never derived, a remittance before any submission),
    /// with the reason: they are parked.
    pub parked: Vec<(&'a ClaimCommit, String)>,
}

/// Folds the batch's claim commits, in log order, onto `stored`: the lifecycles of the claims they
/// address, as the read models held them before the batch (a claim missing there was never derived).
pub fn fold_lifecycles(
    commits: &[ClaimCommit],
    mut stored: HashMap<ClaimKey, Lifecycle>,
) -> LifecycleChanges<'_> {
    let mut touched: HashMap<ClaimKey, Touched> = HashMap::new();
    let mut order: Vec<ClaimKey> = Vec::new();
    let mut parked: Vec<(&ClaimCommit, String)> = Vec::new();
    for claim in commits {
        let key = claim.key();
        let entry = match touched.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(vacant) => {
                let Some(state) = stored.remove(&key) else {
                    parked.push((
                        claim,
                        "the claim was never derived (no claims row has its id)".to_owned(),
                    ));
                    continue;
                };
                order.push(key);
                vacant.insert(Touched {
                    before: state.clone(),
                    now: state,
                })
            }
        };
        if let Err(reason) = fits(&entry.now, claim) {
            parked.push((claim, reason));
            continue;
        }
        for event in &claim.events {
            entry.now.apply(event);
        }
    }
    let mut deltas = RollupDeltas::default();
    let mut claims: Vec<Lifecycle> = Vec::with_capacity(order.len());
    for key in &order {
        if let Some(entry) = touched.remove(key)
            && entry.before != entry.now
        {
            deltas.add_claim(&entry.before, -1);
            deltas.add_claim(&entry.now, 1);
            claims.push(entry.now);
        }
    }
    LifecycleChanges {
        claims,
        deltas,
        parked,
    }
}

/// Whether a commit can apply to `state`: a submission must name the claim it is addressed as,
/// and every other event needs a submission first.
fn fits(state: &Lifecycle, claim: &ClaimCommit) -> Result<(), String> {
    let mut submitted = state.submitted_on.is_some();
    for event in &claim.events {
        match event {
            ClaimEvent::Submitted { session, payer, .. } => {
                let id = ClaimId::for_session_and_payer(*session, *payer);
                if id.as_uuid() != claim.commit.aggregate_id.as_uuid()
                    || session.as_uuid() != state.session
                    || payer.as_uuid() != state.payer
                {
                    return Err(
                        "the submission names another session or payer than its claim".to_owned(),
                    );
                }
                submitted = true;
            }
            _ if !submitted => {
                return Err(format!(
                    "a claim that was never submitted cannot be {}",
                    match event {
                        ClaimEvent::Adjudicated(_) => "adjudicated",
                        ClaimEvent::Resubmitted { .. } => "resubmitted",
                        _ => "written off",
                    }
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A claim's contribution to the rollups.
impl RollupDeltas {
    /// Adds `sign` × the contribution of `claim` (nothing for a claim never submitted).
    pub fn add_claim(&mut self, claim: &Lifecycle, sign: i64) {
        let Some(date_of_service) = claim.date_of_service else {
            return;
        };
        if claim.submitted_on.is_none() {
            return;
        }
        let month = month_of(date_of_service);
        for line in &claim.lines {
            let key = ReimbursementKey {
                chain: claim.chain,
                month,
                clinic: claim.clinic,
                payer: claim.payer,
                code: line.code.clone(),
            };
            let mut counters = Reimbursement {
                billed_lines: 1,
                billed_units: i64::from(line.units),
                billed_cents: line.charge_cents,
                ..Reimbursement::default()
            };
            if let Some(result) = &line.result {
                let denied = result.paid_cents == 0;
                counters.adjudicated_lines = 1;
                counters.denied_lines = i64::from(denied);
                counters.allowed_cents = result.allowed_cents;
                counters.paid_cents = result.paid_cents;
                counters.paid_units = i64::from(result.paid_units);
                counters.patient_responsibility_cents = result.patient_responsibility_cents;
                if !denied {
                    counters.paid_lines = 1;
                    counters.days_to_payment_sum = claim
                        .adjudicated_on
                        .map_or(0, |paid_on| (paid_on - date_of_service).num_days());
                }
                if denied {
                    let mut reasons: BTreeMap<(&str, &str), i64> = BTreeMap::new();
                    for adjustment in &result.adjustments {
                        *reasons
                            .entry((adjustment.group.as_str(), adjustment.reason.as_str()))
                            .or_default() += adjustment.amount_cents;
                    }
                    for ((group, reason), amount) in reasons {
                        let entry = self
                            .denials
                            .entry(DenialKey {
                                line: key.clone(),
                                group: group.to_owned(),
                                reason: reason.to_owned(),
                            })
                            .or_default();
                        entry.lines += sign;
                        entry.amount_cents += sign * amount;
                    }
                }
            }
            self.reimbursement
                .entry(key)
                .or_default()
                .add(&counters, sign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::Denials;

    fn claim(result: Option<LineResult>) -> Lifecycle {
        Lifecycle {
            chain: Uuid::from_u128(1),
            session: Uuid::from_u128(2),
            payer: Uuid::from_u128(3),
            clinic: Uuid::from_u128(4),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 10),
            status: ClaimStatus::Paid,
            submitted_on: NaiveDate::from_ymd_opt(2026, 3, 11),
            adjudicated_on: NaiveDate::from_ymd_opt(2026, 3, 31),
            payer_claim_number: None,
            written_off_cents: 0,
            resubmissions: 0,
            lines: vec![OutcomeLine {
                line_number: 1,
                code: "97140".to_owned(),
                modifiers: Vec::new(),
                units: 2,
                charge_cents: 9000,
                result,
            }],
        }
    }

    #[test]
    fn given_a_claim_added_then_removed_when_summed_then_every_counter_is_zero() {
        let paid = claim(Some(LineResult {
            allowed_cents: 8000,
            paid_cents: 8000,
            patient_responsibility_cents: 0,
            paid_units: 2,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "45".to_owned(),
                amount_cents: 1000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&paid, 1);
        let key = ReimbursementKey {
            chain: paid.chain,
            month: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            clinic: paid.clinic,
            payer: paid.payer,
            code: "97140".to_owned(),
        };
        let counters = deltas.reimbursement[&key];
        assert_eq!(counters.paid_lines, 1);
        assert_eq!(counters.days_to_payment_sum, 21);
        assert!(deltas.denials.is_empty(), "a paid line is not a denial");
        deltas.add_claim(&paid, -1);
        assert_eq!(deltas.reimbursement[&key], Reimbursement::default());
    }

    #[test]
    fn given_a_denied_line_when_added_then_its_adjustments_are_denial_reasons() {
        let denied = claim(Some(LineResult {
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "50".to_owned(),
                amount_cents: 9000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&denied, 1);
        let (key, counters) = deltas.denials.iter().next().expect("one reason");
        assert_eq!((key.group.as_str(), key.reason.as_str()), ("CO", "50"));
        assert_eq!(
            *counters,
            Denials {
                lines: 1,
                amount_cents: 9000
            }
        );
        let reimbursement = deltas.reimbursement.values().next().expect("one row");
        assert_eq!(reimbursement.denied_lines, 1);
        assert_eq!(reimbursement.paid_lines, 0);
        assert_eq!(reimbursement.days_to_payment_sum, 0);
    }
}
