//! A payer simulator for demos: the remittance a payer with a given policy would send for a
//! submitted claim, deterministic from a seed.
//!
//! Line by line, in this order: a code the payer never pays separately is bundled (CO-97); a code
//! it does not accept is not covered (CO-50); an always-therapy code without the payer's
//! plan-of-care modifier is a modifier problem (CO-4); the column-2 code of an NCCI pair billed
//! with its column-1 code is bundled (CO-97) unless the pair allows a distinct-procedure modifier,
//! the payer accepts one and the line carries it. Any other line is paid at the fee schedule per
//! unit (capped at the charge), the difference is contractual (CO-45), and a seeded share of paid
//! lines has part of the allowed amount applied to the deductible (PR-1). Every remittance it
//! produces passes [`crate::remittance::validate_remittance`] for the submission (tested).
//!
//! The caller takes the policy from the payer-rules engine (the version in force on the date of
//! service) and the NCCI tables from the reference data; nothing here reads files or a clock.

use chrono::NaiveDate;
use claimledger_billing::{
    Cents, DistinctProcedureModifiers, ModifierIndicator, PayerPolicy, ReferenceData,
};

use crate::claim::Submission;
use crate::command::{AdjustmentInput, LineAdjudicationInput, RemittanceInput};
use crate::event::ClaimLine;

/// How the simulated payer behaves beyond its published rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayerBehaviour {
    /// The seed: the same seed, claim and policy give the same remittance.
    pub seed: u64,
    /// The share of paid lines, in percent (0–100), with a deductible applied.
    pub deductible_line_percent: u8,
    /// The part of such a line's allowed amount, in percent (0–100), applied to the deductible.
    pub deductible_percent_of_allowed: u8,
}

/// What to simulate: the claim as submitted and the remittance's identity.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedClaim<'a> {
    /// The current submission.
    pub submission: &'a Submission,
    /// The remittance date.
    pub adjudicated_on: NaiveDate,
}

/// The remittance `policy`'s payer would send for `claim`.
pub fn simulate_remittance(
    policy: &PayerPolicy,
    reference: &ReferenceData,
    claim: SimulatedClaim<'_>,
    behaviour: PayerBehaviour,
) -> RemittanceInput {
    let submission = claim.submission;
    let lines = submission
        .lines
        .iter()
        .map(|line| simulate_line(policy, reference, submission, line, behaviour))
        .collect();
    RemittanceInput {
        payer_claim_number: format!("SIM-{:016X}", mix(behaviour.seed ^ fingerprint(submission))),
        adjudicated_on: claim.adjudicated_on,
        lines,
    }
}

/// Why a line is not paid, as group CO and its CARC.
fn denial_reason(
    policy: &PayerPolicy,
    reference: &ReferenceData,
    submission: &Submission,
    line: &ClaimLine,
) -> Option<&'static str> {
    let date_of_service = submission.date_of_service;
    if policy.bundled_codes.contains(&line.code) {
        return Some("97");
    }
    if !policy.accepted_codes.contains(&line.code) {
        return Some("50");
    }
    if let Some(required) = policy.plan_of_care_modifier
        && reference.is_always_therapy(line.code, date_of_service)
        && !line.modifiers.contains(&required)
    {
        return Some("4");
    }
    if policy.enforce_ncci_edits {
        let distinct = line
            .modifiers
            .iter()
            .any(|modifier| modifier.is_ncci_distinct_procedure());
        let bundled = submission.lines.iter().any(|other| {
            other.line_number != line.line_number
                && reference
                    .ptp_edit_between(line.code, other.code, date_of_service)
                    .is_some_and(|edit| {
                        let bypassed = edit.indicator == ModifierIndicator::Allowed
                            && policy.distinct_procedure_modifiers
                                != DistinctProcedureModifiers::NotAccepted
                            && distinct;
                        edit.column2 == line.code && edit.column1 == other.code && !bypassed
                    })
        });
        if bundled {
            return Some("97");
        }
    }
    None
}

fn simulate_line(
    policy: &PayerPolicy,
    reference: &ReferenceData,
    submission: &Submission,
    line: &ClaimLine,
    behaviour: PayerBehaviour,
) -> LineAdjudicationInput {
    let charge = line.charge_cents;
    if let Some(reason) = denial_reason(policy, reference, submission, line) {
        return LineAdjudicationInput {
            line_number: line.line_number,
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: adjustment("CO", reason, charge).into_iter().collect(),
        };
    }
    let fee = policy
        .fee_schedule
        .per_unit(line.code)
        .unwrap_or(Cents(charge));
    let allowed = fee.0.saturating_mul(i64::from(line.units)).clamp(0, charge);
    let draw = mix(behaviour.seed ^ fingerprint(submission) ^ u64::from(line.line_number)) % 100;
    let patient = if draw < u64::from(behaviour.deductible_line_percent.min(100)) {
        allowed * i64::from(behaviour.deductible_percent_of_allowed.min(100)) / 100
    } else {
        0
    };
    LineAdjudicationInput {
        line_number: line.line_number,
        allowed_cents: allowed,
        paid_cents: allowed - patient,
        patient_responsibility_cents: patient,
        paid_units: line.units,
        adjustments: adjustment("CO", "45", charge - allowed)
            .into_iter()
            .chain(adjustment("PR", "1", patient))
            .collect(),
    }
}

/// An adjustment, or none for a zero amount (a remittance does not list empty adjustments).
fn adjustment(group: &str, reason: &str, amount_cents: i64) -> Option<AdjustmentInput> {
    (amount_cents != 0).then(|| AdjustmentInput {
        group: group.to_owned(),
        reason_code: reason.to_owned(),
        amount_cents,
    })
}

/// A stable number for the claim, so different claims under one seed draw differently.
fn fingerprint(submission: &Submission) -> u64 {
    let bytes = submission.session.as_bytes();
    let mut value = 0_u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0_u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        value = mix(value ^ u64::from_le_bytes(word));
    }
    value
}

/// SplitMix64's finaliser: a cheap, well-spread hash of 64 bits.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use claimledger_billing::{CptCode, Modifier};
    use claimledger_events::{PayerId, SessionId};
    use proptest::prelude::*;

    use super::*;
    use crate::remittance::{RemittanceWindow, validate_remittance};

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    fn line(line_number: u16, code: CptCode, modifiers: Vec<Modifier>, units: u16) -> ClaimLine {
        ClaimLine {
            line_number,
            code,
            modifiers,
            units,
            charge_cents: 4500 * i64::from(units),
        }
    }

    fn submission(session: u8, lines: Vec<ClaimLine>) -> Submission {
        Submission {
            session: SessionId::from_bytes([session; 16]),
            payer: PayerId::from_bytes([2; 16]),
            date_of_service: day("2026-03-10"),
            submitted_on: day("2026-03-11"),
            lines,
        }
    }

    fn no_deductible(seed: u64) -> PayerBehaviour {
        PayerBehaviour {
            seed,
            deductible_line_percent: 0,
            deductible_percent_of_allowed: 0,
        }
    }

    fn remit(
        policy: &PayerPolicy,
        submission: &Submission,
        behaviour: PayerBehaviour,
    ) -> RemittanceInput {
        simulate_remittance(
            policy,
            &ReferenceData::example(),
            SimulatedClaim {
                submission,
                adjudicated_on: day("2026-04-01"),
            },
            behaviour,
        )
    }

    fn reasons(remittance: &RemittanceInput) -> Vec<Vec<(String, String)>> {
        remittance
            .lines
            .iter()
            .map(|line| {
                line.adjustments
                    .iter()
                    .map(|adjustment| (adjustment.group.clone(), adjustment.reason_code.clone()))
                    .collect()
            })
            .collect()
    }

    fn pair(group: &str, reason: &str) -> (String, String) {
        (group.to_owned(), reason.to_owned())
    }

    #[test]
    fn given_a_massage_only_payer_when_manual_therapy_is_billed_then_it_is_not_covered() {
        let policy = PayerPolicy::example_commercial_massage_only();
        let claim = submission(1, vec![line(1, CptCode::ManualTherapy, vec![], 2)]);
        let remittance = remit(&policy, &claim, no_deductible(7));
        assert_eq!(reasons(&remittance), vec![vec![pair("CO", "50")]]);
        assert_eq!(remittance.lines[0].paid_cents, 0);
    }

    #[test]
    fn given_a_medicare_like_payer_when_gp_is_missing_or_a_pair_is_billed_then_co_4_and_co_97() {
        let policy = PayerPolicy::example_medicare_like();
        let gp = Modifier::PhysicalTherapyPlan;
        let claim = submission(
            1,
            vec![
                line(1, CptCode::ManualTherapy, vec![gp], 1),
                line(2, CptCode::Massage, vec![gp], 1),
                line(3, CptCode::TherapeuticExercise, vec![], 1),
            ],
        );
        let remittance = remit(&policy, &claim, no_deductible(7));
        let fee = policy
            .fee_schedule
            .per_unit(CptCode::ManualTherapy)
            .expect("a fee")
            .0;
        assert_eq!(
            reasons(&remittance),
            vec![
                vec![pair("CO", "45")],
                vec![pair("CO", "97")],
                vec![pair("CO", "4")],
            ]
        );
        assert_eq!(remittance.lines[0].paid_cents, fee);
        // With the X modifier the pair is payable.
        let claim = submission(
            1,
            vec![
                line(1, CptCode::ManualTherapy, vec![gp], 1),
                line(
                    2,
                    CptCode::Massage,
                    vec![gp, Modifier::SeparateStructure],
                    1,
                ),
            ],
        );
        let remittance = remit(&policy, &claim, no_deductible(7));
        assert!(remittance.lines[1].paid_cents > 0, "{remittance:?}");
    }

    #[test]
    fn given_the_same_seed_when_simulated_twice_then_the_remittances_are_equal() {
        let policy = PayerPolicy::example_medicare_like();
        let gp = Modifier::PhysicalTherapyPlan;
        let claim = submission(3, vec![line(1, CptCode::Massage, vec![gp], 2)]);
        let behaviour = PayerBehaviour {
            seed: 42,
            deductible_line_percent: 50,
            deductible_percent_of_allowed: 40,
        };
        assert_eq!(
            remit(&policy, &claim, behaviour),
            remit(&policy, &claim, behaviour)
        );
        // Over many claims about half the paid lines carry a deductible.
        let with_deductible = (0..200_u8)
            .filter(|session| {
                let claim = submission(*session, vec![line(1, CptCode::Massage, vec![gp], 2)]);
                remit(&policy, &claim, behaviour).lines[0].patient_responsibility_cents > 0
            })
            .count();
        assert!((60..140).contains(&with_deductible), "{with_deductible}");
    }

    proptest! {
        #[test]
        fn every_simulated_remittance_passes_validation(
            seed in any::<u64>(),
            session in any::<u8>(),
            share in 0_u8..=100,
            part in 0_u8..=100,
            codes in prop::collection::vec((0_usize..CptCode::ALL.len(), 1_u16..5, any::<bool>()), 1..5),
            massage_only in any::<bool>(),
        ) {
            let policy = if massage_only {
                PayerPolicy::example_commercial_massage_only()
            } else {
                PayerPolicy::example_medicare_like()
            };
            let lines: Vec<ClaimLine> = codes
                .iter()
                .enumerate()
                .map(|(index, (code, units, gp))| {
                    let modifiers = if *gp { vec![Modifier::PhysicalTherapyPlan] } else { vec![] };
                    line(u16::try_from(index + 1).unwrap_or(1), CptCode::ALL[*code], modifiers, *units)
                })
                .collect();
            let claim = submission(session, lines);
            let behaviour = PayerBehaviour { seed, deductible_line_percent: share, deductible_percent_of_allowed: part };
            let remittance = remit(&policy, &claim, behaviour);
            let window = RemittanceWindow { submitted_on: day("2026-03-11"), today: day("2026-04-01") };
            let validated = validate_remittance(&remittance, &claim.lines, window);
            prop_assert!(validated.is_ok(), "{validated:?}");
        }
    }
}
