//! Claim derivation: codes, units, modifiers, pointers and charges from a documented visit, with
//! the reason for each decision.

use claimledger_billing::claim::{
    CodeReason, DeriveError, OmissionReason, SubstitutionCause, UnitCapSource,
};
use claimledger_billing::{
    Cents, CptCode, DerivedClaim, Modifier, PayerPolicy, ReferenceData, Technique, UnitMethod,
    Visit, derive_claim,
};

use crate::fixtures::{charge_master, date, modality, referral, service, typical_visit, visit};

fn derive(visit: &Visit, policy: &PayerPolicy) -> DerivedClaim {
    derive_claim(visit, policy, &ReferenceData::example(), &charge_master()).expect("derivable")
}

fn line_summary(derived: &DerivedClaim) -> Vec<(CptCode, u32, Vec<Modifier>)> {
    derived
        .claim
        .lines
        .iter()
        .map(|line| (line.code, line.units, line.modifiers.clone()))
        .collect()
}

#[test]
fn given_the_typical_visit_when_derived_for_a_medicare_like_payer_then_lines_units_and_modifiers_follow_the_rules()
 {
    let derived = derive(&typical_visit(), &PayerPolicy::example_medicare_like());
    use Modifier::{PhysicalTherapyPlan as GP, SeparateStructure as XS};
    assert_eq!(
        line_summary(&derived),
        [
            (CptCode::TherapeuticExercise, 1, vec![GP]),
            (CptCode::Massage, 2, vec![GP, XS]),
            (CptCode::ManualTherapy, 1, vec![GP])
        ]
    );
    assert_eq!(derived.units.timed.total_timed_minutes, 55);
    assert_eq!(derived.omitted.len(), 1);
    assert_eq!(
        (derived.omitted[0].code, &derived.omitted[0].reason),
        (CptCode::HotColdPacks, &OmissionReason::Bundled)
    );
    assert_eq!(
        derived
            .claim
            .lines
            .iter()
            .map(|line| line.charge)
            .collect::<Vec<_>>(),
        [Cents(4200), Cents(8000), Cents(4500)]
    );
    assert_eq!(derived.claim.total_charge, Cents(16700));
    assert_eq!(
        derived
            .claim
            .diagnoses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["M54.50", "M62.830"]
    );
    assert!(derived.claim.lines.iter().all(|line| {
        line.diagnosis_pointers
            .iter()
            .map(ToString::to_string)
            .collect::<String>()
            == "AB"
    }));
    let massage = derived.explanations[1].to_string();
    assert!(
        massage.starts_with("97124 as documented (Swedish massage)"),
        "{massage}"
    );
    assert!(massage.contains("XS: NCCI pair with 97140 (indicator 1) and the documentation separates the regions (lower back vs neck)"), "{massage}");
    let exercise = derived.explanations[0].to_string();
    assert!(
        exercise.contains("10 leftover min, which ranked #1"),
        "{exercise}"
    );
}

#[test]
fn given_massage_and_manual_work_when_the_payer_wants_one_code_then_all_minutes_go_to_its_preferred_supported_code()
 {
    let mut visit = visit(
        vec![
            service(Technique::SwedishMassage, 30, "back"),
            service(Technique::MyofascialRelease, 15, "back"),
        ],
        Vec::new(),
    );
    visit.referral = Some(referral(date(2026, 2, 1), date(2026, 6, 1)));
    let policy = PayerPolicy::example_commercial_massage_only();
    let derived = derive(&visit, &policy);
    assert_eq!(line_summary(&derived), [(CptCode::Massage, 3, vec![])]);
    match &derived.explanations[0].code_reason {
        CodeReason::PayerPreference {
            documented,
            cause,
            payer_preferred,
            ..
        } => {
            assert_eq!(documented, &[CptCode::Massage, CptCode::ManualTherapy]);
            assert_eq!(
                (*cause, *payer_preferred),
                (SubstitutionCause::OneCodePerVisit, true)
            );
        }
        other => panic!("expected a payer preference, got {other:?}"),
    }
    assert!(
        derived.explanations[0]
            .to_string()
            .contains("97124 is the payer's preferred code among those the techniques support")
    );
}

#[test]
fn given_only_joint_mobilisation_when_the_payer_accepts_only_97124_then_97140_is_kept_because_the_documentation_supports_nothing_else()
 {
    let visit = visit(
        vec![service(Technique::JointMobilisation, 30, "neck")],
        Vec::new(),
    );
    let derived = derive(&visit, &PayerPolicy::example_commercial_massage_only());
    assert_eq!(
        line_summary(&derived),
        [(CptCode::ManualTherapy, 2, vec![])]
    );
    assert!(matches!(
        derived.explanations[0].code_reason,
        CodeReason::AsDocumented { .. }
    ));
}

#[test]
fn given_97124_and_97140_on_the_same_region_when_derived_then_no_distinct_modifier_is_invented() {
    let visit = visit(
        vec![
            service(Technique::SwedishMassage, 30, "Lower back"),
            service(Technique::JointMobilisation, 15, "lower back "),
        ],
        Vec::new(),
    );
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    assert_eq!(
        line_summary(&derived),
        [
            (CptCode::Massage, 2, vec![Modifier::PhysicalTherapyPlan]),
            (
                CptCode::ManualTherapy,
                1,
                vec![Modifier::PhysicalTherapyPlan]
            )
        ]
    );
}

#[test]
fn given_two_hours_of_exercise_when_derived_then_units_are_cut_to_the_mue_with_the_reason() {
    let visit = visit(
        vec![service(Technique::StrengthExercise, 120, "knee")],
        Vec::new(),
    );
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    assert_eq!(derived.claim.lines[0].units, 6);
    assert_eq!(
        derived.explanations[0].units_reason.cap,
        Some((UnitCapSource::Mue, 6))
    );
    let explanation = derived.explanations[0].to_string();
    assert!(
        explanation.contains("so 8 units (CMS total time); capped at 6 by the MUE"),
        "{explanation}"
    );
}

#[test]
fn given_one_code_documented_on_two_regions_when_derived_then_one_line_carries_all_its_units() {
    let visit = visit(
        vec![
            service(Technique::MyofascialRelease, 15, "neck"),
            service(Technique::SoftTissueMobilisation, 15, "shoulder"),
        ],
        Vec::new(),
    );
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    assert_eq!(
        line_summary(&derived),
        [(
            CptCode::ManualTherapy,
            2,
            vec![Modifier::PhysicalTherapyPlan]
        )]
    );
}

#[test]
fn given_a_tie_when_the_clinician_marked_a_primary_code_then_the_primary_gets_the_extra_unit() {
    let mut visit = visit(
        vec![
            service(Technique::BalanceAndProprioception, 20, "ankle"),
            service(Technique::StrengthExercise, 20, "ankle"),
        ],
        Vec::new(),
    );
    visit.primary_code = Some(CptCode::NeuromuscularReeducation);
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    let units: Vec<(CptCode, u32)> = derived
        .claim
        .lines
        .iter()
        .map(|line| (line.code, line.units))
        .collect();
    assert_eq!(
        units,
        [
            (CptCode::TherapeuticExercise, 1),
            (CptCode::NeuromuscularReeducation, 2)
        ]
    );
}

#[test]
fn given_untimed_traction_and_7_minutes_of_exercise_when_cms_then_traction_minutes_do_not_rescue_the_exercise()
 {
    let visit = visit(
        vec![service(Technique::StrengthExercise, 7, "back")],
        vec![modality(CptCode::MechanicalTraction, 20)],
    );
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    assert_eq!(
        line_summary(&derived),
        [(CptCode::MechanicalTraction, 1, vec![])]
    );
    assert!(matches!(
        derived.omitted[0].reason,
        OmissionReason::NoUnits(_)
    ));
    assert!(
        derived.explanations[0]
            .to_string()
            .contains("untimed code, 1 unit whatever the time")
    );
}

#[test]
fn given_the_same_visit_when_the_payer_counts_per_code_then_ama_units_apply() {
    let visit = visit(
        vec![
            service(Technique::StrengthExercise, 33, "back"),
            service(Technique::JointMobilisation, 7, "neck"),
        ],
        Vec::new(),
    );
    let mut policy = PayerPolicy::example_medicare_like();
    assert_eq!(
        derive(&visit, &policy)
            .claim
            .lines
            .iter()
            .map(|line| line.units)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    policy.unit_method = UnitMethod::AmaPerCode;
    let derived = derive(&visit, &policy);
    assert_eq!(
        derived
            .claim
            .lines
            .iter()
            .map(|line| (line.code, line.units))
            .collect::<Vec<_>>(),
        [(CptCode::TherapeuticExercise, 2)]
    );
}

#[test]
fn given_a_code_without_a_price_when_derived_then_the_error_names_the_charge_master_entry() {
    let visit = visit(
        vec![service(Technique::SwedishMassage, 30, "back")],
        Vec::new(),
    );
    let error = derive_claim(
        &visit,
        &PayerPolicy::example_medicare_like(),
        &ReferenceData::example(),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(
        error,
        DeriveError::MissingCharge {
            code: CptCode::Massage
        }
    );
    assert_eq!(
        error.to_string(),
        "charge_master[97124]: no charge per unit for 97124"
    );
}

#[test]
fn given_an_invalid_diagnosis_when_derived_then_it_is_left_off_item_21_and_kept_for_the_scrubber() {
    let mut visit = typical_visit();
    visit.diagnoses = vec!["M545".to_owned(), "M54.50".to_owned(), "M54.50".to_owned()];
    let derived = derive(&visit, &PayerPolicy::example_medicare_like());
    assert_eq!(derived.claim.diagnoses.len(), 1);
    assert_eq!(derived.skipped_diagnoses[0].field, "diagnoses[0]");
}
