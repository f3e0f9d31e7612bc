//! Engine decisions for each shipped example payer, and the rules version selected by date of
//! service on the day before, of and after a change.

use claimledger_billing::{Cents, CptCode, DistinctProcedureModifiers, Modifier};
use claimledger_payer_rules::{
    Changes, ChoiceReason, EngineError, Outcome, Quantity, RejectionReason, RulesSelector,
    VisitContext, VisitLine, VisitQuery,
};

use crate::helpers::{Line, book, date, low_back_pain};

const MEDICARE: &str = "medicare-like";
const EVERGREEN: &str = "evergreen-massage-ppo";
const LAKESHORE: &str = "lakeshore-mutual";
const PIP: &str = "keystone-auto-pip";
const WORKERS_COMP: &str = "summit-workers-comp";

fn with_gp(mut line: Line) -> Line {
    line.modifiers.push(Modifier::PhysicalTherapyPlan);
    line
}

#[test]
fn medicare_like_accepts_massage_with_gp_at_the_2025_fee() -> anyhow::Result<()> {
    let line = with_gp(Line::new(date(2025, 6, 2), CptCode::Massage, 2));
    let decision = book().decide(MEDICARE, &line.query())?;
    assert_eq!(decision.outcome, Outcome::Accepted);
    assert_eq!(decision.expected_allowed, Cents(2 * 2976));
    assert_eq!(decision.rules_version, 1);
    Ok(())
}

#[test]
fn medicare_like_adds_gp_to_an_always_therapy_line_that_lacks_it() -> anyhow::Result<()> {
    let line = Line::new(date(2025, 6, 2), CptCode::ManualTherapy, 1);
    let decision = book().decide(MEDICARE, &line.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::AcceptedWithChanges(Changes {
            modifiers_to_add: vec![Modifier::PhysicalTherapyPlan],
            ..Changes::default()
        })
    );
    assert_eq!(decision.expected_allowed, Cents(2717));
    Ok(())
}

#[test]
fn medicare_like_never_pays_hot_cold_packs() -> anyhow::Result<()> {
    let line = Line::new(date(2025, 6, 2), CptCode::HotColdPacks, 1);
    let decision = book().decide(MEDICARE, &line.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::Rejected(RejectionReason::Bundled {
            code: CptCode::HotColdPacks
        })
    );
    assert_eq!(decision.expected_allowed, Cents::ZERO);
    Ok(())
}

#[test]
fn medicare_like_wants_an_x_modifier_on_massage_billed_with_manual_therapy() -> anyhow::Result<()> {
    let mut line = with_gp(Line::new(date(2025, 6, 2), CptCode::Massage, 1));
    line.other_codes_on_visit = vec![CptCode::ManualTherapy];
    let expected = Outcome::Rejected(RejectionReason::NcciModifierRequired {
        column1: CptCode::ManualTherapy,
        accepted: DistinctProcedureModifiers::UseXModifiers,
    });
    assert_eq!(book().decide(MEDICARE, &line.query())?.outcome, expected);

    line.modifiers.push(Modifier::DistinctProcedural);
    assert_eq!(
        book().decide(MEDICARE, &line.query())?.outcome,
        expected,
        "this payer wants X{{EPSU}}, not 59"
    );

    line.modifiers = vec![Modifier::PhysicalTherapyPlan, Modifier::SeparateStructure];
    let decision = book().decide(MEDICARE, &line.query())?;
    assert_eq!(decision.outcome, Outcome::Accepted);
    assert_eq!(decision.expected_allowed, Cents(2976));

    // The column 1 code itself is always payable.
    let mut manual = with_gp(Line::new(date(2025, 6, 2), CptCode::ManualTherapy, 1));
    manual.other_codes_on_visit = vec![CptCode::Massage];
    assert_eq!(
        book().decide(MEDICARE, &manual.query())?.outcome,
        Outcome::Accepted
    );
    Ok(())
}

#[test]
fn medicare_like_caps_units_at_the_mue() -> anyhow::Result<()> {
    let line = with_gp(Line::new(date(2025, 6, 2), CptCode::TherapeuticExercise, 7));
    let decision = book().decide(MEDICARE, &line.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::AcceptedWithChanges(Changes {
            units_capped_to: Some(6),
            ..Changes::default()
        })
    );
    assert_eq!(decision.billed_units, 6);
    assert_eq!(decision.expected_allowed, Cents(6 * 2879));
    Ok(())
}

#[test]
fn medicare_like_needs_a_plan_of_care_certified_within_90_days() -> anyhow::Result<()> {
    let mut line = with_gp(Line::new(date(2025, 4, 1), CptCode::Massage, 1));
    line.context.referral_date = None;
    assert_eq!(
        book().decide(MEDICARE, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::ReferralMissing)
    );
    line.context.referral_date = Some(date(2025, 1, 1));
    assert_eq!(
        book().decide(MEDICARE, &line.query())?.outcome,
        Outcome::Accepted
    );
    line.date_of_service = date(2025, 4, 2);
    assert_eq!(
        book().decide(MEDICARE, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::ReferralExpired {
            valid_until: date(2025, 4, 1)
        })
    );
    Ok(())
}

#[test]
fn medicare_like_switches_fee_schedules_on_2026_01_01() -> anyhow::Result<()> {
    let cases = [
        (date(2025, 12, 31), 1, Cents(2717)),
        (date(2026, 1, 1), 2, Cents(2772)),
        (date(2026, 1, 2), 2, Cents(2772)),
    ];
    for (date_of_service, version, allowed) in cases {
        let line = with_gp(Line::new(date_of_service, CptCode::ManualTherapy, 1));
        let decision = book().decide(MEDICARE, &line.query())?;
        assert_eq!(decision.rules_version, version, "{date_of_service}");
        assert_eq!(decision.expected_allowed, allowed, "{date_of_service}");
        assert_eq!(
            book()
                .policy_in_force(MEDICARE, date_of_service)
                .map(|policy| policy.version),
            Some(version)
        );
    }
    Ok(())
}

#[test]
fn before_the_first_version_no_rules_are_in_force() {
    let line = with_gp(Line::new(date(2024, 12, 31), CptCode::ManualTherapy, 1));
    assert_eq!(
        book().decide(MEDICARE, &line.query()),
        Err(EngineError::NoRulesInForce {
            payer: MEDICARE.to_owned(),
            date_of_service: date(2024, 12, 31)
        })
    );
}

#[test]
fn an_unknown_payer_is_an_error_not_a_rejection() {
    let line = Line::new(date(2025, 6, 2), CptCode::Massage, 1);
    assert_eq!(
        book().decide("acme-health", &line.query()),
        Err(EngineError::UnknownPayer {
            payer: "acme-health".to_owned()
        })
    );
}

fn massage_then_manual_visit(minutes_massage: u32, minutes_manual: u32) -> VisitQuery {
    VisitQuery {
        date_of_service: date(2026, 3, 2),
        lines: vec![
            VisitLine {
                code: CptCode::Massage,
                quantity: Quantity::Minutes(minutes_massage),
                modifiers: vec![Modifier::PhysicalTherapyPlan, Modifier::SeparateStructure],
                supported_alternatives: Vec::new(),
            },
            VisitLine {
                code: CptCode::ManualTherapy,
                quantity: Quantity::Minutes(minutes_manual),
                modifiers: vec![Modifier::PhysicalTherapyPlan],
                supported_alternatives: Vec::new(),
            },
        ],
        diagnoses: low_back_pain(),
        context: VisitContext {
            referral_date: Some(date(2026, 2, 1)),
            ..VisitContext::default()
        },
    }
}

#[test]
fn a_visit_is_priced_under_the_rules_in_force_or_under_any_named_version() -> anyhow::Result<()> {
    // 33 + 7 timed minutes: CMS total time gives 3 units, 2 to 97124 (two full blocks) and the
    // third to the larger leftover, 97140's 7 minutes.
    let visit = massage_then_manual_visit(33, 7);
    let in_force = book().evaluate_visit(MEDICARE, RulesSelector::InForce, &visit)?;
    assert_eq!(in_force.rules_version, 2);
    let units: Vec<(CptCode, u32)> = in_force
        .lines
        .iter()
        .map(|line| (line.billed_code, line.billed_units))
        .collect();
    assert_eq!(units, [(CptCode::Massage, 2), (CptCode::ManualTherapy, 1)]);
    assert_eq!(in_force.expected_allowed, Cents(2 * 3073 + 2772));

    let under_2025 = book().evaluate_visit(MEDICARE, RulesSelector::Version(1), &visit)?;
    assert_eq!(under_2025.rules_version, 1);
    assert_eq!(under_2025.expected_allowed, Cents(2 * 2976 + 2717));

    assert_eq!(
        book().evaluate_visit(MEDICARE, RulesSelector::Version(7), &visit),
        Err(EngineError::UnknownRulesVersion {
            payer: MEDICARE.to_owned(),
            version: 7
        })
    );
    Ok(())
}

#[test]
fn the_same_minutes_bill_differently_under_ama_per_code() -> anyhow::Result<()> {
    // AMA per code: 97140's own 7 minutes earn no unit.
    let visit = massage_then_manual_visit(33, 7);
    let decision = book().evaluate_visit(LAKESHORE, RulesSelector::InForce, &visit)?;
    assert_eq!(decision.lines[0].billed_units, 2);
    assert_eq!(
        decision.lines[1].outcome,
        Outcome::Rejected(RejectionReason::NoBillableUnits)
    );
    assert_eq!(decision.expected_allowed, Cents(2 * 3100));
    Ok(())
}

#[test]
fn evergreen_bills_supported_manual_therapy_time_as_massage() -> anyhow::Result<()> {
    let mut line = Line::new(date(2025, 9, 15), CptCode::ManualTherapy, 2);
    line.supported_alternatives = vec![CptCode::Massage];
    let decision = book().decide(EVERGREEN, &line.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::AcceptedWithChanges(Changes {
            substitute_code: Some(CptCode::Massage),
            ..Changes::default()
        })
    );
    assert_eq!(decision.billed_code, CptCode::Massage);
    assert_eq!(decision.expected_allowed, Cents(2 * 3300));
    Ok(())
}

#[test]
fn evergreen_rejects_manual_therapy_the_documentation_does_not_support_as_massage()
-> anyhow::Result<()> {
    let line = Line::new(date(2025, 9, 15), CptCode::ManualTherapy, 2);
    assert_eq!(
        book().decide(EVERGREEN, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::CodeNotCovered {
            code: CptCode::ManualTherapy
        })
    );
    Ok(())
}

#[test]
fn evergreen_caps_units_and_visits() -> anyhow::Result<()> {
    let mut line = Line::new(date(2025, 9, 15), CptCode::Massage, 6);
    let decision = book().decide(EVERGREEN, &line.query())?;
    assert_eq!(decision.billed_units, 4);
    assert_eq!(decision.expected_allowed, Cents(4 * 3300));

    line.units = 4;
    line.context.visit_number_in_year = Some(16);
    assert_eq!(
        book().decide(EVERGREEN, &line.query())?.outcome,
        Outcome::Accepted
    );
    line.context.visit_number_in_year = Some(17);
    assert_eq!(
        book().decide(EVERGREEN, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::VisitCapReached { cap: 16 })
    );
    Ok(())
}

#[test]
fn evergreen_keeps_massage_when_both_codes_are_on_one_visit() -> anyhow::Result<()> {
    let mut massage = Line::new(date(2025, 9, 15), CptCode::Massage, 2);
    massage.other_codes_on_visit = vec![CptCode::ManualTherapy];
    assert_eq!(
        book().decide(EVERGREEN, &massage.query())?.outcome,
        Outcome::Accepted
    );
    Ok(())
}

#[test]
fn code_choice_follows_preference_then_allowed_amount() -> anyhow::Result<()> {
    let both = [CptCode::Massage, CptCode::ManualTherapy];
    let evergreen = book().choose_code(EVERGREEN, date(2025, 9, 15), &both, 2)?;
    assert_eq!(evergreen.code, Some(CptCode::Massage));
    assert_eq!(evergreen.reason, Some(ChoiceReason::PayerPreference));

    let lakeshore = book().choose_code(LAKESHORE, date(2025, 9, 15), &both, 2)?;
    assert_eq!(lakeshore.code, Some(CptCode::ManualTherapy));
    assert_eq!(lakeshore.reason, Some(ChoiceReason::HighestAllowed));
    assert_eq!(lakeshore.expected_allowed, Cents(2 * 3850));

    let none = book().choose_code(EVERGREEN, date(2025, 9, 15), &[CptCode::ManualTherapy], 2)?;
    assert_eq!(none.code, None);
    assert_eq!(none.expected_allowed, Cents::ZERO);

    let only = book().choose_code(LAKESHORE, date(2025, 9, 15), &[CptCode::Massage], 1)?;
    assert_eq!(only.reason, Some(ChoiceReason::OnlyCoveredCode));
    Ok(())
}

#[test]
fn lakeshore_requires_an_x_modifier_and_no_gp() -> anyhow::Result<()> {
    let mut line = Line::new(date(2025, 9, 15), CptCode::Massage, 2);
    line.other_codes_on_visit = vec![CptCode::ManualTherapy];
    line.modifiers = vec![Modifier::DistinctProcedural];
    assert!(matches!(
        book().decide(LAKESHORE, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::NcciModifierRequired { .. })
    ));
    line.modifiers = vec![Modifier::SeparateEncounter];
    let decision = book().decide(LAKESHORE, &line.query())?;
    assert_eq!(decision.outcome, Outcome::Accepted);
    assert_eq!(decision.expected_allowed, Cents(2 * 3100));
    Ok(())
}

#[test]
fn auto_pip_pays_packs_once_and_needs_no_gp_or_ncci_modifier() -> anyhow::Result<()> {
    let packs = Line::new(date(2025, 5, 5), CptCode::HotColdPacks, 2);
    let decision = book().decide(PIP, &packs.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::AcceptedWithChanges(Changes {
            units_capped_to: Some(1),
            ..Changes::default()
        })
    );
    assert_eq!(decision.expected_allowed, Cents(1500));

    // No NCCI edits and no GP: 97140 with mechanical traction (an NCCI pair) goes out as it is.
    let mut manual = Line::new(date(2025, 5, 5), CptCode::ManualTherapy, 3);
    manual.other_codes_on_visit = vec![CptCode::MechanicalTraction];
    let decision = book().decide(PIP, &manual.query())?;
    assert_eq!(decision.outcome, Outcome::Accepted);
    assert_eq!(decision.expected_allowed, Cents(3 * 4500));
    Ok(())
}

#[test]
fn auto_pip_pays_one_massage_or_manual_code_per_visit_keeping_the_better_paid() -> anyhow::Result<()>
{
    let mut massage = Line::new(date(2025, 5, 5), CptCode::Massage, 2);
    massage.other_codes_on_visit = vec![CptCode::ManualTherapy];
    assert_eq!(
        book().decide(PIP, &massage.query())?.outcome,
        Outcome::Rejected(RejectionReason::OneMassageOrManualCodePerVisit {
            kept: CptCode::ManualTherapy
        })
    );
    let mut manual = Line::new(date(2025, 5, 5), CptCode::ManualTherapy, 2);
    manual.other_codes_on_visit = vec![CptCode::Massage];
    assert_eq!(
        book().decide(PIP, &manual.query())?.outcome,
        Outcome::Accepted
    );
    Ok(())
}

#[test]
fn auto_pip_caps_visits_and_prescriptions() -> anyhow::Result<()> {
    let mut line = Line::new(date(2025, 5, 5), CptCode::ManualTherapy, 2);
    line.context.visit_number_in_year = Some(25);
    assert_eq!(
        book().decide(PIP, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::VisitCapReached { cap: 24 })
    );
    line.context.visit_number_in_year = Some(24);
    line.context.referral_date = Some(date(2025, 3, 6));
    assert_eq!(
        book().decide(PIP, &line.query())?.outcome,
        Outcome::Accepted
    );
    line.context.referral_date = Some(date(2025, 3, 5));
    assert_eq!(
        book().decide(PIP, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::ReferralExpired {
            valid_until: date(2025, 5, 4)
        })
    );
    Ok(())
}

#[test]
fn workers_comp_pays_the_colorado_style_conversion_factor_with_gp_and_59() -> anyhow::Result<()> {
    let mut line = Line::new(date(2025, 7, 1), CptCode::Massage, 2);
    line.other_codes_on_visit = vec![CptCode::ManualTherapy];
    line.modifiers = vec![Modifier::SeparateStructure];
    assert_eq!(
        book().decide(WORKERS_COMP, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::NcciModifierRequired {
            column1: CptCode::ManualTherapy,
            accepted: DistinctProcedureModifiers::Use59,
        })
    );
    line.modifiers = vec![Modifier::DistinctProcedural];
    let decision = book().decide(WORKERS_COMP, &line.query())?;
    assert_eq!(
        decision.outcome,
        Outcome::AcceptedWithChanges(Changes {
            modifiers_to_add: vec![Modifier::PhysicalTherapyPlan],
            ..Changes::default()
        })
    );
    assert_eq!(decision.expected_allowed, Cents(2 * 4508));
    Ok(())
}

#[test]
fn workers_comp_enforces_its_filing_limit_and_unit_cap() -> anyhow::Result<()> {
    let mut line = with_gp(Line::new(date(2025, 7, 1), CptCode::ManualTherapy, 5));
    line.context.submission_date = Some(date(2025, 10, 29));
    let decision = book().decide(WORKERS_COMP, &line.query())?;
    assert_eq!(decision.billed_units, 4);
    assert_eq!(decision.expected_allowed, Cents(4 * 4116));

    line.context.submission_date = Some(date(2025, 10, 30));
    assert_eq!(
        book().decide(WORKERS_COMP, &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::TimelyFilingExpired {
            deadline: date(2025, 10, 29)
        })
    );
    Ok(())
}

#[test]
fn a_line_without_a_diagnosis_is_rejected_by_every_payer() -> anyhow::Result<()> {
    for payer in book().payer_ids() {
        let mut line = with_gp(Line::new(date(2025, 7, 1), CptCode::Massage, 1));
        line.diagnoses.clear();
        assert_eq!(
            book().decide(payer, &line.query())?.outcome,
            Outcome::Rejected(RejectionReason::DiagnosisMissing),
            "{payer}"
        );
    }
    Ok(())
}

#[test]
fn the_shipped_directory_holds_the_five_example_payers() {
    assert_eq!(
        book().payer_ids(),
        [EVERGREEN, PIP, LAKESHORE, MEDICARE, WORKERS_COMP,]
    );
}

#[test]
fn a_payer_that_accepts_no_bypass_modifier_denies_the_column_2_code_outright() -> anyhow::Result<()>
{
    let strict = r#"payer = "strict-payer"
name = "Strict payer"

[[versions]]
version = 1
effective_from = 2025-01-01
unit_method = "ama_per_code"
accepted_codes = ["97124", "97140"]
distinct_procedure_modifiers = "not_accepted"
enforce_ncci_edits = true
one_massage_or_manual_code_per_visit = false
timely_filing_days = 90

[versions.fee_schedule]
"97124" = 3000
"97140" = 3500
"#;
    let mut sources = claimledger_payer_rules::RuleSources::read_dir(&crate::helpers::rules_dir())?;
    sources.payer_files = vec![claimledger_payer_rules::SourceFile::new(
        "rules/strict-payer.toml",
        strict,
    )];
    let strict_book = sources.compile()?;
    let mut line = Line::new(date(2025, 9, 15), CptCode::Massage, 2);
    line.other_codes_on_visit = vec![CptCode::ManualTherapy];
    line.modifiers = vec![Modifier::DistinctProcedural];
    assert_eq!(
        strict_book.decide("strict-payer", &line.query())?.outcome,
        Outcome::Rejected(RejectionReason::NcciEdit {
            column1: CptCode::ManualTherapy
        })
    );
    Ok(())
}
