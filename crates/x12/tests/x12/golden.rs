//! Golden files: each 837P the fixtures render must match its file byte for byte (set
//! `CLAIMLEDGER_X12_UPDATE_GOLDEN=1` to rewrite them after a deliberate change), and each 835
//! and 999 golden file must read into the expected typed values.

use std::path::PathBuf;

use claimledger_billing as billing;
use claimledger_x12::{
    Adjustment, AdjustmentGroup, BillingProviderDetails, Claim837, ClaimStatus, Delimiters,
    ElementError, ExportContext, GroupResponse, GroupStatus, Handling, Layout, LineContext,
    Payment835, PaymentMethod, Procedure, Remittance835, SegmentError, SetStatus, TaxIdKind,
    parse_835, parse_999, render_837p,
};

use crate::fixtures;

pub(crate) fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

pub(crate) fn read_golden(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Every 837P the tests produce, by golden file name.
pub(crate) fn rendered_837s() -> Vec<(&'static str, String)> {
    let one = |claim: Claim837| fixtures::interchange(vec![vec![claim]]);
    let cases = [
        ("837p_self.x12", one(fixtures::self_claim())),
        ("837p_dependent.x12", one(fixtures::dependent_claim())),
        ("837p_replacement.x12", one(fixtures::replacement_claim())),
        ("837p_void.x12", one(fixtures::void_claim())),
        ("837p_compact_pipes.x12", {
            let mut interchange = one(fixtures::self_claim());
            interchange.delimiters = Delimiters::new('|', '>', '^', '~').expect("usable");
            interchange.layout = Layout::Compact;
            interchange
        }),
        (
            "837p_batch.x12",
            fixtures::interchange(vec![
                vec![
                    fixtures::self_claim(),
                    fixtures::dependent_claim(),
                    fixtures::second_clinic_claim(),
                ],
                vec![fixtures::replacement_claim(), fixtures::void_claim()],
            ]),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, interchange)| {
            let text = render_837p(&interchange).unwrap_or_else(|error| panic!("{name}: {error}"));
            (name, text)
        })
        .collect()
}

#[test]
fn given_the_fixture_claims_when_rendered_then_each_837p_matches_its_golden_file() {
    let update = std::env::var("CLAIMLEDGER_X12_UPDATE_GOLDEN").is_ok_and(|value| value == "1");
    for (name, text) in rendered_837s() {
        let path = golden_dir().join(name);
        if update {
            std::fs::write(&path, &text).expect("the golden file is writable");
        }
        let golden = String::from_utf8(read_golden(name)).expect("ASCII");
        assert_eq!(text, golden, "{name} differs from its golden file");
    }
}

/// Every 835 golden file, each of which must balance and pass both validators.
pub(crate) const GOLDEN_835S: [&str; 5] = [
    "835_paid.x12",
    "835_reversal_correction.x12",
    "835_plb.x12",
    "835_claim_cas.x12",
    "835_split.x12",
];

fn parse_golden_835(name: &str) -> Remittance835 {
    parse_835(&read_golden(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn only_payment(remittance: &Remittance835) -> &Payment835 {
    assert_eq!(remittance.payments.len(), 1);
    &remittance.payments[0]
}

#[test]
fn given_a_paid_835_when_parsed_then_payment_trace_parties_lines_and_remarks_are_typed() {
    let remittance = parse_golden_835("835_paid.x12");
    assert_eq!(remittance.interchange_control_number, "000000101");
    assert_eq!(remittance.sender_id, "ACMEPAYER");
    let payment = only_payment(&remittance);
    assert_eq!(payment.control_number, "0001");
    assert_eq!(payment.handling, Handling::RemittanceOnly);
    assert_eq!(payment.amount_cents, 15050);
    assert_eq!(payment.method, PaymentMethod::Check);
    assert_eq!(payment.payment_date, fixtures::date(2026, 3, 15));
    assert_eq!(payment.trace_number, "EFT0001");
    assert_eq!(payment.originator_id, "1512345678");
    assert_eq!(payment.production_date, Some(fixtures::date(2026, 3, 14)));
    assert_eq!(payment.payer.name, "ACME HEALTH");
    assert_eq!(payment.payee.npi(), Some(fixtures::BILLING_NPI));
    assert_eq!(payment.payee.additional_id.as_deref(), Some("123456789"));
    let claim = &payment.claims[0];
    assert_eq!(claim.patient_control_number, "CL0001");
    assert_eq!(claim.status, ClaimStatus::ProcessedAsPrimary);
    assert_eq!(
        (
            claim.charge_cents,
            claim.paid_cents,
            claim.patient_responsibility_cents
        ),
        (20050, 15050, Some(3000))
    );
    assert_eq!(claim.filing_code, "12");
    assert_eq!(claim.payer_claim_number.as_deref(), Some("PAYERCLM7001"));
    assert_eq!(claim.patient.as_ref().map(|p| p.last.as_str()), Some("DOE"));
    assert_eq!(claim.lines.len(), 2);
    let second = &claim.lines[1];
    assert_eq!(
        second.procedure,
        Procedure {
            qualifier: "HC".to_owned(),
            code: "97124".to_owned(),
            modifiers: vec!["GP".to_owned(), "59".to_owned()],
        }
    );
    assert_eq!((second.charge_cents, second.paid_cents), (6050, 4050));
    assert_eq!(second.paid_units, Some(1));
    assert_eq!(second.date_of_service, Some(fixtures::date(2026, 3, 2)));
    assert_eq!(second.line_control_number.as_deref(), Some("CL0001-2"));
    assert_eq!(second.allowed_cents, Some(5050));
    assert_eq!(second.remarks, vec!["N130".to_owned()]);
    assert_eq!(
        second.adjustments,
        vec![
            Adjustment {
                group: AdjustmentGroup::ContractualObligation,
                reason: "45".to_owned(),
                amount_cents: 1000,
            },
            Adjustment {
                group: AdjustmentGroup::PatientResponsibility,
                reason: "3".to_owned(),
                amount_cents: 1000,
            },
        ]
    );
}

#[test]
fn given_a_reversal_and_its_correction_when_parsed_then_both_claims_balance_with_negated_amounts() {
    let remittance = parse_golden_835("835_reversal_correction.x12");
    let payment = only_payment(&remittance);
    let [reversal, correction] = payment.claims.as_slice() else {
        panic!("two claims: {:?}", payment.claims);
    };
    assert_eq!(reversal.status, ClaimStatus::Reversal);
    assert_eq!(reversal.patient_control_number, "CL0001");
    assert_eq!(
        (reversal.charge_cents, reversal.paid_cents),
        (-20050, -15050)
    );
    assert_eq!(reversal.patient_responsibility_cents, None);
    assert!(
        reversal
            .lines
            .iter()
            .flat_map(|line| &line.adjustments)
            .all(|adjustment| adjustment.amount_cents < 0)
    );
    assert_eq!(correction.status, ClaimStatus::ProcessedAsPrimary);
    assert_eq!(correction.patient_control_number, "CL0001");
    assert_eq!(correction.paid_cents, 17050);
    assert_eq!(payment.amount_cents, 2000);
}

#[test]
fn given_provider_level_adjustments_when_parsed_then_each_plb_pair_is_kept_and_balanced() {
    let remittance = parse_golden_835("835_plb.x12");
    let payment = only_payment(&remittance);
    assert_eq!(payment.handling, Handling::PaymentWithRemittance);
    assert_eq!(payment.amount_cents, 3137);
    let reasons: Vec<(&str, Option<&str>, i64)> = payment
        .provider_adjustments
        .iter()
        .map(|plb| {
            (
                plb.reason.as_str(),
                plb.reference.as_deref(),
                plb.amount_cents,
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![("L6", None, -137), ("WO", Some("PAYERCLM6001"), 3000)]
    );
    assert_eq!(
        payment.provider_adjustments[0].provider_id,
        fixtures::BILLING_NPI
    );
    assert_eq!(
        payment.provider_adjustments[0].fiscal_period_end,
        fixtures::date(2026, 12, 31)
    );
}

#[test]
fn given_claim_level_adjustments_when_parsed_then_they_stay_on_the_claim() {
    let remittance = parse_golden_835("835_claim_cas.x12");
    let payment = only_payment(&remittance);
    let [denied, paid] = payment.claims.as_slice() else {
        panic!("two claims: {:?}", payment.claims);
    };
    assert_eq!(denied.status, ClaimStatus::Denied);
    assert!(denied.lines.is_empty());
    assert_eq!(denied.adjustments[0].reason, "29");
    assert_eq!(denied.adjustments[0].amount_cents, 8000);
    assert_eq!(
        paid.adjustments[0].group,
        AdjustmentGroup::PatientResponsibility
    );
    assert!(paid.lines[0].adjustments.is_empty());
}

#[test]
fn given_a_split_claim_when_parsed_then_only_the_answered_line_is_listed() {
    let remittance = parse_golden_835("835_split.x12");
    let claim = &only_payment(&remittance).claims[0];
    assert_eq!(claim.lines.len(), 1);
    assert_eq!(
        claim.lines[0].line_control_number.as_deref(),
        Some("CL0001-1")
    );
    assert_eq!(
        claim.lines[0].remarks,
        vec!["MA130".to_owned(), "N362".to_owned()]
    );
}

#[test]
fn given_a_999_with_a_rejected_set_when_parsed_then_each_set_has_its_status_and_errors() {
    let acknowledgments =
        parse_999(&read_golden("999_rejected_set.x12")).unwrap_or_else(|error| panic!("{error}"));
    let [acknowledgment] = acknowledgments.as_slice() else {
        panic!("one acknowledgment: {acknowledgments:?}");
    };
    assert_eq!(acknowledgment.functional_id, "HC");
    assert_eq!(acknowledgment.group_control_number, "17");
    assert_eq!(acknowledgment.version.as_deref(), Some("005010X222A1"));
    let [accepted, rejected] = acknowledgment.sets.as_slice() else {
        panic!("two sets: {:?}", acknowledgment.sets);
    };
    assert_eq!(
        (accepted.control_number.as_str(), accepted.status),
        ("0001", SetStatus::Accepted)
    );
    assert!(accepted.segment_errors.is_empty());
    assert_eq!(
        (rejected.control_number.as_str(), rejected.status),
        ("0002", SetStatus::Rejected)
    );
    assert_eq!(rejected.error_codes, vec!["5".to_owned()]);
    assert_eq!(
        rejected.segment_errors[0],
        SegmentError {
            segment_id: "NM1".to_owned(),
            position: 24,
            loop_id: None,
            code: Some("8".to_owned()),
            element_errors: vec![ElementError {
                position: 3,
                component: None,
                reference: None,
                code: "1".to_owned(),
                bad_value: None,
            }],
        }
    );
    assert_eq!(
        rejected.segment_errors[1].element_errors[0]
            .bad_value
            .as_deref(),
        Some("CL0001R")
    );
    assert_eq!(
        acknowledgment.group,
        GroupResponse {
            status: GroupStatus::PartiallyAccepted,
            included: 2,
            received: 2,
            accepted: 1,
            error_codes: Vec::new(),
        }
    );
}

#[test]
fn given_a_derived_claim_and_its_export_context_when_converted_then_it_renders_like_the_fixture() {
    let fixture = fixtures::self_claim();
    let lines = fixture
        .lines
        .iter()
        .map(|line| billing::ClaimLine {
            date_of_service: line.date_of_service,
            place_of_service: billing::PlaceOfService::OFFICE,
            code: line.procedure_code.parse().expect("a known code"),
            modifiers: line
                .modifiers
                .iter()
                .map(|modifier| modifier.parse().expect("a known modifier"))
                .collect(),
            diagnosis_pointers: line
                .diagnosis_pointers
                .iter()
                .map(|pointer| billing::claim::DiagnosisPointer(pointer - 1))
                .collect(),
            charge: billing::Cents(line.charge_cents),
            units: line.units,
            rendering_npi: fixtures::RENDERING_NPI.parse().expect("an NPI"),
        })
        .collect();
    let derived = billing::Claim {
        date_of_service: fixtures::date(2026, 3, 2),
        place_of_service: billing::PlaceOfService::OFFICE,
        billing_npi: fixtures::BILLING_NPI.parse().expect("an NPI"),
        tax_id: billing::TaxId::parse("tax_id", "12-3456789").expect("an EIN"),
        diagnoses: vec![
            "M54.50".parse().expect("ICD-10"),
            "M62.830".parse().expect("ICD-10"),
        ],
        lines,
        total_charge: billing::Cents(20050),
    };
    let provider = fixtures::billing_provider();
    let rendering = fixture
        .rendering_provider
        .clone()
        .expect("a rendering provider");
    let context = ExportContext {
        patient_control_number: fixture.patient_control_number.clone(),
        billing_provider: BillingProviderDetails {
            name: provider.name,
            tax_id_kind: TaxIdKind::Ein,
            taxonomy: provider.taxonomy,
            address: provider.address,
        },
        subscriber: fixture.subscriber.clone(),
        patient: fixture.patient.clone(),
        payer: fixture.payer.clone(),
        frequency: fixture.frequency.clone(),
        indicators: fixture.indicators,
        prior_authorization: fixture.prior_authorization.clone(),
        referral_number: fixture.referral_number.clone(),
        referring_provider: fixture.referring_provider.clone(),
        rendering_name: rendering.name,
        rendering_taxonomy: rendering.taxonomy,
        lines: fixture
            .lines
            .iter()
            .map(|line| LineContext {
                line_control_number: line.line_control_number.clone(),
                description: line.description.clone(),
            })
            .collect(),
    };
    let converted = Claim837::from_derived(&derived, context).expect("a complete context");
    let diagnoses = vec!["M5450".to_owned(), "M62830".to_owned()];
    assert_eq!(
        converted,
        Claim837 {
            diagnoses,
            ..fixture
        }
    );
    let rendered = render_837p(&fixtures::interchange(vec![vec![converted]])).expect("renders");
    let golden = String::from_utf8(read_golden("837p_self.x12")).expect("ASCII");
    assert_eq!(rendered, golden);
}

#[test]
fn given_an_835_with_other_delimiters_and_no_line_breaks_when_parsed_then_it_reads_the_same() {
    let text = String::from_utf8(read_golden("835_paid.x12")).expect("ASCII");
    let other = text.replace('*', "|").replace(':', ">").replace("~\n", "!");
    assert_eq!(&other.as_bytes()[103..106], b"|>!");
    let parsed = parse_835(other.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(parsed, parse_golden_835("835_paid.x12"));
}
