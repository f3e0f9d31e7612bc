//! Given/when/then scenarios of the claim lifecycle and property tests of the 835 balancing rule:
//! no infrastructure, no clock, no runtime.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use claimledger_events::{PayerId, SessionId};
use proptest::prelude::*;

use crate::claim::{Claim, ClaimStatus};
use crate::command::{
    AdjustmentInput, ClaimCommand, DecisionContext, LineAdjudicationInput, LineInput,
    RemittanceInput,
};
use crate::error::ClaimError;
use crate::event::{ClaimEvent, ClaimLine};
use crate::remittance::validate_line_outcome;
use crate::schema::{from_log_event, to_log_event};

/// Every scenario is decided at 2026-03-20 15:00 UTC (11:00 in New York).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 20, 15, 0, 0)
        .single()
        .expect("a valid instant")
}

fn context() -> DecisionContext {
    DecisionContext::at(now(), chrono_tz::America::New_York)
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

fn line(code: &str, units: u16, charge_cents: i64) -> LineInput {
    LineInput {
        code: code.to_owned(),
        modifiers: vec!["GP".to_owned()],
        units,
        charge_cents,
    }
}

fn submit() -> ClaimCommand {
    ClaimCommand::Submit {
        session: SessionId::from_bytes([1; 16]),
        payer: PayerId::from_bytes([2; 16]),
        date_of_service: day("2026-03-10"),
        lines: vec![line("97140", 2, 9000), line("97124", 1, 4000)],
    }
}

fn adjustment(group: &str, reason: &str, amount_cents: i64) -> AdjustmentInput {
    AdjustmentInput {
        group: group.to_owned(),
        reason_code: reason.to_owned(),
        amount_cents,
    }
}

/// Line 1 paid 6000 after CO-45 of 1000 and PR-1 of 2000 (allowed 8000); line 2 denied CO-97.
fn remittance() -> RemittanceInput {
    RemittanceInput {
        payer_claim_number: "PCN-1".to_owned(),
        adjudicated_on: day("2026-03-20"),
        lines: vec![
            LineAdjudicationInput {
                line_number: 1,
                allowed_cents: 8000,
                paid_cents: 6000,
                patient_responsibility_cents: 2000,
                paid_units: 2,
                adjustments: vec![adjustment("CO", "45", 1000), adjustment("PR", "1", 2000)],
            },
            LineAdjudicationInput {
                line_number: 2,
                allowed_cents: 0,
                paid_cents: 0,
                patient_responsibility_cents: 0,
                paid_units: 0,
                adjustments: vec![adjustment("CO", "97", 4000)],
            },
        ],
    }
}

/// A scenario: decide each command in turn on the claim they build, returning the claim.
fn given(commands: &[ClaimCommand]) -> Claim {
    let mut claim = Claim::default();
    for command in commands {
        let events = claim
            .decide(command, &context())
            .unwrap_or_else(|error| panic!("{} was refused: {error}", command.name()));
        for event in &events {
            claim.apply(event);
        }
    }
    claim
}

fn refused(claim: &Claim, command: &ClaimCommand) -> ClaimError {
    match claim.decide(command, &context()) {
        Ok(events) => panic!("expected a refusal, got {events:?}"),
        Err(error) => error,
    }
}

#[test]
fn given_a_draft_when_submitted_then_the_lines_are_numbered_and_dated_today_in_the_clinic() {
    let claim = given(&[submit()]);
    assert_eq!(claim.status(), ClaimStatus::Submitted);
    let submission = claim.submission().expect("submitted");
    assert_eq!(submission.submitted_on, day("2026-03-20"));
    assert_eq!(
        submission
            .lines
            .iter()
            .map(|line| line.line_number)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(claim.billed_cents(), 13000);
}

#[test]
fn given_a_submitted_claim_when_a_remittance_pays_a_line_then_it_is_paid_and_denied_lines_count() {
    let claim = given(&[submit(), ClaimCommand::Adjudicate(remittance())]);
    assert_eq!(claim.status(), ClaimStatus::Paid);
    let adjudication = claim.adjudication().expect("adjudicated");
    assert_eq!(adjudication.paid_cents(), 6000);
    assert!(!adjudication.lines[0].is_denied());
    assert!(adjudication.lines[1].is_denied());
    // 13000 billed − 6000 paid − 2000 patient = 5000 neither paid nor owed.
    assert_eq!(claim.unpaid_balance_cents(), 5000);
}

fn denial() -> RemittanceInput {
    RemittanceInput {
        payer_claim_number: "PCN-2".to_owned(),
        adjudicated_on: day("2026-03-20"),
        lines: vec![
            LineAdjudicationInput {
                line_number: 1,
                allowed_cents: 0,
                paid_cents: 0,
                patient_responsibility_cents: 0,
                paid_units: 0,
                adjustments: vec![adjustment("CO", "50", 9000)],
            },
            LineAdjudicationInput {
                line_number: 2,
                allowed_cents: 0,
                paid_cents: 0,
                patient_responsibility_cents: 0,
                paid_units: 0,
                adjustments: vec![adjustment("co", "50", 4000)],
            },
        ],
    }
}

#[test]
fn given_a_remittance_with_a_lower_case_group_when_adjudicated_then_the_group_is_named() {
    let claim = given(&[submit()]);
    let error = refused(&claim, &ClaimCommand::Adjudicate(denial()));
    assert_eq!(error.field(), "lines[1].adjustments[0].group");
}

#[test]
fn given_a_denial_when_resubmitted_with_the_other_code_then_the_old_remittance_no_longer_applies() {
    let mut all_denied = denial();
    all_denied.lines[1].adjustments[0].group = "CO".to_owned();
    let resubmit = ClaimCommand::Resubmit {
        reason: "bill 97124 instead of 97140".to_owned(),
        lines: vec![line("97124", 2, 8000)],
    };
    let claim = given(&[
        submit(),
        ClaimCommand::Adjudicate(all_denied.clone()),
        resubmit.clone(),
    ]);
    assert_eq!(claim.status(), ClaimStatus::Resubmitted);
    assert_eq!(claim.resubmissions(), 1);
    assert!(claim.adjudication().is_none());
    assert_eq!(claim.billed_cents(), 8000);
    // Resubmitting again needs another denial first.
    assert_eq!(refused(&claim, &resubmit).field(), "status");
}

#[test]
fn given_a_denial_when_resubmitted_unchanged_then_it_is_refused_as_a_duplicate() {
    let mut all_denied = denial();
    all_denied.lines[1].adjustments[0].group = "CO".to_owned();
    let claim = given(&[submit(), ClaimCommand::Adjudicate(all_denied)]);
    assert_eq!(claim.status(), ClaimStatus::Denied);
    let ClaimCommand::Submit { lines, .. } = submit() else {
        unreachable!("submit() is a submission")
    };
    let error = refused(
        &claim,
        &ClaimCommand::Resubmit {
            reason: "again".to_owned(),
            lines,
        },
    );
    assert_eq!(error.field(), "lines");
}

#[test]
fn given_a_paid_claim_when_the_balance_is_written_off_then_it_is_final() {
    let claim = given(&[
        submit(),
        ClaimCommand::Adjudicate(remittance()),
        ClaimCommand::WriteOff {
            reason: "bundled line not appealed".to_owned(),
            amount_cents: 4000,
        },
    ]);
    assert_eq!(claim.status(), ClaimStatus::WrittenOff);
    assert_eq!(claim.written_off_cents(), 4000);
    let again = ClaimCommand::WriteOff {
        reason: "rest".to_owned(),
        amount_cents: 1000,
    };
    assert_eq!(refused(&claim, &again).field(), "status");
    assert!(refused(&claim, &again).is_state_conflict());
}

#[test]
fn given_a_write_off_above_the_balance_when_decided_then_the_amount_is_refused() {
    let claim = given(&[submit(), ClaimCommand::Adjudicate(remittance())]);
    let error = refused(
        &claim,
        &ClaimCommand::WriteOff {
            reason: "all".to_owned(),
            amount_cents: 5001,
        },
    );
    assert_eq!(error.field(), "amount_cents");
}

#[test]
fn given_a_remittance_event_without_a_submission_when_applied_then_it_is_ignored() {
    let given = given(&[submit(), ClaimCommand::Adjudicate(remittance())]);
    let stray = ClaimEvent::Adjudicated(given.adjudication().expect("adjudicated").clone());
    let claim = Claim::from_events(&[stray]);
    assert_eq!(claim, Claim::default());
}

#[test]
fn given_a_draft_when_adjudicated_or_written_off_then_the_status_is_refused() {
    let draft = Claim::default();
    assert_eq!(
        refused(&draft, &ClaimCommand::Adjudicate(remittance())).field(),
        "status"
    );
    let submitted = given(&[submit()]);
    assert_eq!(refused(&submitted, &submit()).field(), "status");
}

/// A change that makes a valid remittance wrong.
type Mistake = Box<dyn Fn(&mut RemittanceInput)>;

#[test]
fn given_remittance_mistakes_when_adjudicated_then_each_names_its_field() {
    let claim = given(&[submit()]);
    let cases: Vec<(&str, Mistake)> = vec![
        (
            "lines[1].line_number",
            Box::new(|r| r.lines[1].line_number = 7),
        ),
        (
            "lines[1].line_number",
            Box::new(|r| r.lines[1].line_number = 1),
        ),
        (
            "lines",
            Box::new(|r| {
                r.lines.pop();
            }),
        ),
        (
            "lines[0].allowed_cents",
            Box::new(|r| r.lines[0].allowed_cents = -1),
        ),
        (
            "lines[0].allowed_cents",
            Box::new(|r| r.lines[0].allowed_cents = 9001),
        ),
        (
            "lines[0].paid_units",
            Box::new(|r| r.lines[0].paid_units = 3),
        ),
        (
            "lines[0].paid_cents",
            Box::new(|r| r.lines[0].allowed_cents = 7000),
        ),
        (
            "lines[0].paid_cents",
            Box::new(|r| r.lines[0].adjustments[0].amount_cents = 999),
        ),
        (
            "lines[0].patient_responsibility_cents",
            Box::new(|r| {
                r.lines[0].adjustments[1].group = "OA".to_owned();
            }),
        ),
        (
            "lines[0].adjustments[1].group",
            Box::new(|r| r.lines[0].adjustments[1].group = "XX".to_owned()),
        ),
        (
            "lines[0].adjustments[0].reason_code",
            Box::new(|r| r.lines[0].adjustments[0].reason_code = "4567".to_owned()),
        ),
        (
            "lines[0].adjustments[0].reason_code",
            Box::new(|r| r.lines[0].adjustments[0].reason_code = "4-".to_owned()),
        ),
        (
            "lines[1].adjustments[0].amount_cents",
            Box::new(|r| r.lines[1].adjustments[0].amount_cents = 0),
        ),
        (
            "payer_claim_number",
            Box::new(|r| r.payer_claim_number = "  ".to_owned()),
        ),
        (
            "adjudicated_on",
            Box::new(|r| r.adjudicated_on = day("2026-03-21")),
        ),
        (
            "adjudicated_on",
            Box::new(|r| r.adjudicated_on = day("2026-03-19")),
        ),
    ];
    for (field, change) in cases {
        let mut input = remittance();
        change(&mut input);
        let error = refused(&claim, &ClaimCommand::Adjudicate(input));
        assert_eq!(error.field(), field, "{error}");
        assert!(!error.reason().is_empty());
    }
}

#[test]
fn given_resubmission_mistakes_when_decided_then_each_names_its_field() {
    let mut all_denied = denial();
    all_denied.lines[1].adjustments[0].group = "CO".to_owned();
    let claim = given(&[submit(), ClaimCommand::Adjudicate(all_denied)]);
    let mut bad_code = vec![line("97124", 1, 4000), line("99999", 1, 4000)];
    let error = refused(
        &claim,
        &ClaimCommand::Resubmit {
            reason: "x".to_owned(),
            lines: bad_code.clone(),
        },
    );
    assert_eq!(error.field(), "lines[1].code");
    bad_code[1] = LineInput {
        modifiers: vec!["GP".to_owned(), "ZZ".to_owned()],
        ..line("97124", 1, 4000)
    };
    let error = refused(
        &claim,
        &ClaimCommand::Resubmit {
            reason: "x".to_owned(),
            lines: bad_code,
        },
    );
    assert_eq!(error.field(), "lines[1].modifiers[1]");
    let error = refused(
        &claim,
        &ClaimCommand::Resubmit {
            reason: "x".to_owned(),
            lines: vec![line("97124", 0, 4000)],
        },
    );
    assert_eq!(error.field(), "lines[0].units");
}

#[test]
fn given_every_event_when_round_tripped_through_the_log_then_it_is_unchanged() {
    let claim_events = [
        Claim::default()
            .decide(&submit(), &context())
            .expect("submit"),
        given(&[submit()])
            .decide(&ClaimCommand::Adjudicate(remittance()), &context())
            .expect("adjudicate"),
        vec![ClaimEvent::WrittenOff {
            reason: "r".to_owned(),
            amount_cents: 5,
        }],
    ]
    .concat();
    for event in claim_events {
        let back = from_log_event(&to_log_event(&event)).expect("decodes");
        assert_eq!(back, Some(event));
    }
}

fn submitted_line(charge_cents: i64, units: u16) -> ClaimLine {
    ClaimLine {
        line_number: 1,
        code: claimledger_billing::CptCode::ManualTherapy,
        modifiers: Vec::new(),
        units,
        charge_cents,
    }
}

prop_compose! {
    /// A line a payer could send: contractual, other and patient adjustments that leave a
    /// non-negative payment, and the payment that balances them.
    fn balanced_line()(
        charge in 0_i64..1_000_000,
        contractual_share in 0_u32..=100,
        patient_share in 0_u32..=100,
        reversal in 0_i64..5_000,
    ) -> (i64, LineAdjudicationInput) {
        let contractual = charge * i64::from(contractual_share) / 100;
        let patient = (charge - contractual) * i64::from(patient_share) / 100;
        let allowed = charge - contractual;
        let paid = allowed - patient;
        let mut adjustments = Vec::new();
        if contractual + reversal != 0 {
            adjustments.push(adjustment("CO", "45", contractual + reversal));
        }
        if reversal != 0 {
            // A reversal: a negative OA that gives back what the extra CO took.
            adjustments.push(adjustment("OA", "94", -reversal));
        }
        if patient != 0 {
            adjustments.push(adjustment("PR", "1", patient));
        }
        (charge, LineAdjudicationInput {
            line_number: 1,
            allowed_cents: allowed,
            paid_cents: paid,
            patient_responsibility_cents: patient,
            paid_units: 1,
            adjustments,
        })
    }
}

proptest! {
    #[test]
    fn a_line_whose_adjustments_balance_its_payment_is_accepted((charge, line) in balanced_line()) {
        let outcome = validate_line_outcome(0, &line, &submitted_line(charge, 1));
        prop_assert!(outcome.is_ok(), "{outcome:?}");
    }

    #[test]
    fn a_payment_off_by_any_amount_is_refused_naming_the_paid_amount(
        (charge, mut line) in balanced_line(),
        delta in prop_oneof![-1_000_000_i64..0, 1_i64..1_000_000],
    ) {
        line.paid_cents += delta;
        let error = validate_line_outcome(0, &line, &submitted_line(charge, 1))
            .expect_err("an unbalanced line is refused");
        prop_assert_eq!(error.field(), "lines[0].paid_cents");
    }

    #[test]
    fn an_adjustment_off_by_any_amount_is_refused(
        (charge, mut line) in balanced_line(),
        delta in prop_oneof![-1_000_000_i64..0, 1_i64..1_000_000],
        which in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!line.adjustments.is_empty());
        let index = which.index(line.adjustments.len());
        line.adjustments[index].amount_cents += delta;
        prop_assume!(line.adjustments[index].amount_cents != 0);
        let result = validate_line_outcome(0, &line, &submitted_line(charge, 1));
        prop_assert!(result.is_err(), "{result:?}");
    }
}
