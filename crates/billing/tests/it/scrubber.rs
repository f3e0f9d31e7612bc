//! The scrubber on derived and hand-edited claims: each finding the brief lists, and clean claims
//! staying clean.

use claimledger_billing::scrubber::{Finding, FindingCode, Severity};
use claimledger_billing::{
    Claim, CptCode, Modifier, PayerPolicy, ReferenceData, Technique, Visit, derive_claim, scrub,
};

use crate::fixtures::{charge_master, date, referral, service, typical_visit, visit};

fn derive(visit: &Visit, policy: &PayerPolicy) -> Claim {
    derive_claim(visit, policy, &ReferenceData::example(), &charge_master())
        .expect("derivable")
        .claim
}

fn findings(claim: &Claim, visit: &Visit, policy: &PayerPolicy) -> Vec<Finding> {
    scrub(claim, visit, policy, &ReferenceData::example())
}

fn codes(findings: &[Finding]) -> Vec<(Severity, FindingCode)> {
    findings
        .iter()
        .map(|finding| (finding.severity, finding.code))
        .collect()
}

fn line_index(claim: &Claim, code: CptCode) -> usize {
    claim
        .lines
        .iter()
        .position(|line| line.code == code)
        .expect("line present")
}

#[test]
fn given_the_typical_derived_claim_when_scrubbed_then_there_are_no_findings() {
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    assert_eq!(findings(&derive(&visit, &policy), &visit, &policy), []);
}

#[test]
fn given_a_visit_without_diagnoses_when_scrubbed_then_missing_diagnosis_errors() {
    let mut visit = typical_visit();
    visit.diagnoses.clear();
    let policy = PayerPolicy::example_medicare_like();
    let found = findings(&derive(&visit, &policy), &visit, &policy);
    assert_eq!(found[0].code, FindingCode::MissingDiagnosis);
    assert_eq!(found[0].field, "diagnoses");
    assert!(
        found
            .iter()
            .filter(|finding| finding.code == FindingCode::MissingDiagnosis)
            .count()
            >= 4,
        "claim and each line: {found:#?}"
    );
}

#[test]
fn given_a_malformed_diagnosis_when_scrubbed_then_the_finding_names_it() {
    let mut visit = typical_visit();
    visit.diagnoses.push("M545".to_owned());
    let policy = PayerPolicy::example_medicare_like();
    let found = findings(&derive(&visit, &policy), &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Error, FindingCode::InvalidDiagnosis)]
    );
    assert_eq!(found[0].field, "visit.diagnoses[2]");
    assert!(
        found[0].message.contains("decimal point"),
        "{}",
        found[0].message
    );
}

#[test]
fn given_a_payer_requiring_a_referral_when_none_or_an_expired_one_is_on_file_then_it_errors() {
    let policy = PayerPolicy::example_commercial_massage_only();
    let mut visit = visit(
        vec![service(Technique::SwedishMassage, 45, "back")],
        Vec::new(),
    );
    let claim = derive(&visit, &policy);
    assert_eq!(
        codes(&findings(&claim, &visit, &policy)),
        [(Severity::Error, FindingCode::ReferralMissing)]
    );

    visit.referral = Some(referral(date(2025, 11, 1), date(2026, 12, 31)));
    let found = findings(&claim, &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Error, FindingCode::ReferralNotValidOnDate)]
    );
    assert!(
        found[0].message.contains("expired on 2026-01-30"),
        "90 days after issue wins: {}",
        found[0].message
    );

    visit.referral = Some(referral(date(2026, 3, 3), date(2026, 6, 1)));
    assert_eq!(
        codes(&findings(&claim, &visit, &policy)),
        [(Severity::Error, FindingCode::ReferralNotValidOnDate)]
    );

    visit.referral = Some(referral(date(2026, 2, 1), date(2026, 6, 1)));
    assert_eq!(findings(&claim, &visit, &policy), []);
}

#[test]
fn given_a_hand_edited_code_the_techniques_do_not_support_when_scrubbed_then_overcoding_errors() {
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    let index = line_index(&claim, CptCode::TherapeuticExercise);
    claim.lines[index].code = CptCode::TherapeuticActivities;
    let found = findings(&claim, &visit, &policy);
    let overcoding: Vec<&Finding> = found
        .iter()
        .filter(|finding| finding.code == FindingCode::CodeNotSupportedByDocumentation)
        .collect();
    assert_eq!(overcoding.len(), 1, "{found:#?}");
    assert_eq!(
        overcoding[0].message,
        "no documented service supports 97530"
    );
}

#[test]
fn given_a_service_recorded_under_the_wrong_code_when_scrubbed_then_overcoding_names_the_service() {
    let mut visit = visit(
        vec![service(Technique::SwedishMassage, 30, "back")],
        Vec::new(),
    );
    visit.services[0].code = CptCode::ManualTherapy;
    let policy = PayerPolicy::example_medicare_like();
    let found = findings(&derive(&visit, &policy), &visit, &policy);
    assert_eq!(
        codes(&found),
        [(
            Severity::Error,
            FindingCode::CodeNotSupportedByDocumentation
        )]
    );
    assert_eq!(
        found[0].message,
        "services[0] documents Swedish massage, which 97140 does not cover (it is billed as 97124)"
    );
}

#[test]
fn given_more_units_than_minutes_allow_when_scrubbed_then_it_errors_and_fewer_units_warn() {
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    let index = line_index(&claim, CptCode::Massage);
    claim.lines[index].units = 3;
    let found = findings(&claim, &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Error, FindingCode::UnitsExceedDocumentedMinutes)]
    );
    assert_eq!(found[0].field, format!("lines[{index}].units"));
    assert_eq!(
        found[0].message,
        "3 units of 97124, but 30 documented min allow at most 2 (CMS total time)"
    );

    claim.lines[index].units = 1;
    let found = findings(&claim, &visit, &policy);
    assert_eq!(
        codes(&found),
        [
            (Severity::Warning, FindingCode::UnitsBelowDocumentedMinutes),
            (Severity::Warning, FindingCode::UnitsBelowDocumentedMinutes)
        ]
    );
}

#[test]
fn given_either_allowed_assignment_of_a_cms_tie_when_scrubbed_then_both_are_clean() {
    let visit = visit(
        vec![
            service(Technique::BalanceAndProprioception, 20, "ankle"),
            service(Technique::StrengthExercise, 20, "ankle"),
        ],
        Vec::new(),
    );
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    assert_eq!(findings(&claim, &visit, &policy), []);
    let (exercise, balance) = (
        line_index(&claim, CptCode::TherapeuticExercise),
        line_index(&claim, CptCode::NeuromuscularReeducation),
    );
    let swapped = (claim.lines[balance].units, claim.lines[exercise].units);
    (claim.lines[exercise].units, claim.lines[balance].units) = swapped;
    assert_eq!(findings(&claim, &visit, &policy), []);
    claim.lines[exercise].units = 3;
    claim.lines[balance].units = 0;
    let found = codes(&findings(&claim, &visit, &policy));
    assert!(
        found.contains(&(Severity::Error, FindingCode::UnitsExceedDocumentedMinutes)),
        "never 3 units of one code: {found:?}"
    );
}

#[test]
fn given_97124_and_97140_without_a_modifier_when_scrubbed_then_the_ncci_pair_is_reported() {
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    let index = line_index(&claim, CptCode::Massage);
    claim.lines[index]
        .modifiers
        .retain(|modifier| !modifier.is_ncci_distinct_procedure());
    let found = findings(&claim, &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Error, FindingCode::NcciPairWithoutModifier)]
    );
    assert!(
        found[0]
            .message
            .contains("without 59/X on 97124 only 97140 is paid"),
        "{}",
        found[0].message
    );
}

#[test]
fn given_a_distinct_modifier_on_the_same_region_when_scrubbed_then_the_documentation_does_not_support_it()
 {
    let visit = visit(
        vec![
            service(Technique::SwedishMassage, 30, "back"),
            service(Technique::JointMobilisation, 15, "back"),
        ],
        Vec::new(),
    );
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    assert_eq!(
        codes(&findings(&claim, &visit, &policy)),
        [(Severity::Error, FindingCode::NcciPairWithoutModifier)]
    );
    let index = line_index(&claim, CptCode::Massage);
    claim.lines[index]
        .modifiers
        .push(Modifier::DistinctProcedural);
    let found = codes(&findings(&claim, &visit, &policy));
    assert_eq!(
        found,
        [
            (Severity::Error, FindingCode::DistinctModifierQuestionable),
            (Severity::Warning, FindingCode::DistinctModifierQuestionable)
        ]
    );
}

#[test]
fn given_units_above_the_mue_when_scrubbed_then_mue_exceeded_errors() {
    let visit = visit(
        vec![service(Technique::StrengthExercise, 120, "knee")],
        Vec::new(),
    );
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    assert_eq!(
        findings(&claim, &visit, &policy),
        [],
        "the derived claim is capped and not undercoded"
    );
    claim.lines[0].units = 7;
    assert_eq!(
        codes(&findings(&claim, &visit, &policy)),
        [(Severity::Error, FindingCode::MueExceeded)]
    );
}

#[test]
fn given_cupping_without_a_description_when_scrubbed_then_97139_needs_one() {
    let mut visit = visit(
        vec![service(Technique::Cupping, 20, "upper back")],
        Vec::new(),
    );
    let mut policy = PayerPolicy::example_medicare_like();
    policy.plan_of_care_modifier = None;
    let claim = derive(&visit, &policy);
    assert_eq!(
        codes(&findings(&claim, &visit, &policy)),
        [(Severity::Error, FindingCode::UnlistedCodeWithoutDescription)]
    );
    visit.services[0].description = Some("Static cupping, 6 cups, paraspinals T4-T8".to_owned());
    assert_eq!(findings(&claim, &visit, &policy), []);
}

#[test]
fn given_a_timed_code_with_7_minutes_when_scrubbed_then_it_is_flagged_for_review() {
    let visit = visit(
        vec![
            service(Technique::StrengthExercise, 33, "back"),
            service(Technique::JointMobilisation, 7, "neck"),
        ],
        Vec::new(),
    );
    let policy = PayerPolicy::example_medicare_like();
    let claim = derive(&visit, &policy);
    let found = findings(&claim, &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Warning, FindingCode::TimedCodeUnderEightMinutes)]
    );
    assert_eq!(
        found[0].field,
        format!(
            "lines[{}].units",
            line_index(&claim, CptCode::ManualTherapy)
        )
    );
}

#[test]
fn given_both_massage_codes_for_a_one_code_payer_when_hand_edited_then_the_scrubber_objects() {
    let mut visit = visit(
        vec![
            service(Technique::SwedishMassage, 30, "back"),
            service(Technique::MyofascialRelease, 15, "neck"),
        ],
        Vec::new(),
    );
    visit.referral = Some(referral(date(2026, 2, 1), date(2026, 6, 1)));
    let mut policy = PayerPolicy::example_commercial_massage_only();
    policy.accepted_codes.insert(CptCode::ManualTherapy);
    let mut claim = derive(&visit, &policy);
    assert_eq!(findings(&claim, &visit, &policy), []);
    let mut manual = claim.lines[0].clone();
    manual.code = CptCode::ManualTherapy;
    manual.units = 1;
    claim.lines[0].units = 2;
    claim.lines.push(manual);
    let found = codes(&findings(&claim, &visit, &policy));
    assert!(
        found.contains(&(Severity::Error, FindingCode::MoreThanOneMassageCode)),
        "{found:?}"
    );
}

#[test]
fn given_a_code_the_payer_does_not_pay_when_scrubbed_then_it_errors() {
    let mut visit = visit(
        vec![service(Technique::JointMobilisation, 30, "neck")],
        Vec::new(),
    );
    visit.referral = Some(referral(date(2026, 2, 1), date(2026, 6, 1)));
    let policy = PayerPolicy::example_commercial_massage_only();
    let found = findings(&derive(&visit, &policy), &visit, &policy);
    assert_eq!(
        codes(&found),
        [(Severity::Error, FindingCode::CodeNotAccepted)]
    );
}

#[test]
fn given_an_always_therapy_line_without_gp_or_a_bundled_line_when_scrubbed_then_both_error() {
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    let mut claim = derive(&visit, &policy);
    claim.lines[0].modifiers.clear();
    let mut hot_pack = claim.lines[0].clone();
    hot_pack.code = CptCode::HotColdPacks;
    claim.lines.push(hot_pack);
    let found = codes(&findings(&claim, &visit, &policy));
    assert!(
        found.contains(&(Severity::Error, FindingCode::PlanOfCareModifierMissing)),
        "{found:?}"
    );
    assert!(
        found.contains(&(Severity::Error, FindingCode::BundledCodeBilled)),
        "{found:?}"
    );
}
