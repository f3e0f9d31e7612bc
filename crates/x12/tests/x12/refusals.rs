//! Bad input of every kind is refused with an error naming segment and element, never a panic:
//! unbalanced lines, claims and payments, bad counts and control numbers, wrong delimiters,
//! truncation, non-ASCII bytes, garbage; and 837P values the validators would let through.

use claimledger_x12::{
    BuildProblem, Claim837, Frequency, ParseError, ParseProblem, Patient, render_837p,
};
use proptest::prelude::*;

use crate::fixtures;
use crate::golden::{GOLDEN_835S, read_golden};

fn paid() -> String {
    String::from_utf8(read_golden("835_paid.x12")).expect("ASCII")
}

/// `835_paid.x12` with `from` replaced by `to` (which must occur).
fn edited(from: &str, to: &str) -> String {
    let text = paid();
    assert!(text.contains(from), "{from:?} is in the golden file");
    text.replacen(from, to, 1)
}

fn refuse(text: &str) -> ParseError {
    match claimledger_x12::parse_835(text.as_bytes()) {
        Ok(remittance) => panic!("accepted: {remittance:?}"),
        Err(error) => error,
    }
}

#[test]
fn given_a_line_that_does_not_balance_when_parsed_then_the_file_is_refused_naming_svc03() {
    let error = refuse(&edited(
        "SVC*HC:97140:GP*140*110**2",
        "SVC*HC:97140:GP*140*111**2",
    ));
    assert_eq!(
        error.to_string(),
        "segment 16 (SVC, 14 in its transaction set), SVC-03: line does not balance: \
         charge 14000 − adjustments 3000 ≠ paid 11100 (cents)"
    );
}

#[test]
fn given_a_claim_that_does_not_balance_when_parsed_then_the_file_is_refused_naming_clp04() {
    let error = refuse(&edited(
        "CLP*CL0001*1*200.5*150.5",
        "CLP*CL0001*1*200.5*150",
    ));
    assert_eq!((error.segment_id.as_str(), error.element), ("CLP", Some(4)));
    assert_eq!(error.segment_number, 14);
    assert!(matches!(error.problem, ParseProblem::ClaimImbalance { .. }));
}

#[test]
fn given_a_payment_that_does_not_balance_when_parsed_then_the_file_is_refused_naming_bpr02() {
    let error = refuse(&edited("BPR*I*150.5*", "BPR*I*150.49*"));
    assert_eq!((error.segment_id.as_str(), error.element), ("BPR", Some(2)));
    assert_eq!(
        error.problem,
        ParseProblem::PaymentImbalance {
            claims_paid: 15050,
            provider_adjustments: 0,
            payment: 15049,
        }
    );
}

#[test]
fn given_the_4010_group_code_cr_when_parsed_then_the_file_is_refused_naming_cas01() {
    let error = refuse(&edited("CAS*CO*45*10", "CAS*CR*45*10"));
    assert_eq!((error.segment_id.as_str(), error.element), ("CAS", Some(1)));
    assert!(error.to_string().contains("CR is not 005010"));
}

#[test]
fn given_bad_amounts_when_parsed_then_three_decimals_and_exponents_are_refused() {
    let three = refuse(&edited("AMT*B6*130", "AMT*B6*130.001"));
    assert_eq!((three.segment_id.as_str(), three.element), ("AMT", Some(2)));
    let exponent = refuse(&edited("CAS*PR*2*20", "CAS*PR*2*2E1"));
    assert_eq!(
        (exponent.segment_id.as_str(), exponent.element),
        ("CAS", Some(3))
    );
}

#[test]
fn given_envelope_errors_when_parsed_then_each_names_its_trailer() {
    let count = refuse(&edited("SE*27*0001", "SE*26*0001"));
    assert_eq!((count.segment_id.as_str(), count.element), ("SE", Some(1)));
    let control = refuse(&edited("SE*27*0001", "SE*27*0002"));
    assert!(matches!(
        control.problem,
        ParseProblem::ControlNumberMismatch { .. }
    ));
    let group = refuse(&edited("GE*1*101", "GE*2*101"));
    assert_eq!((group.segment_id.as_str(), group.element), ("GE", Some(1)));
    let interchange = refuse(&edited("IEA*1*000000101", "IEA*1*000000102"));
    assert_eq!(
        (interchange.segment_id.as_str(), interchange.element),
        ("IEA", Some(2))
    );
    let version = refuse(&edited("005010X221A1", "004010X091A1"));
    assert_eq!(
        (version.segment_id.as_str(), version.element),
        ("GS", Some(8))
    );
}

#[test]
fn given_an_unknown_payee_npi_check_digit_when_parsed_then_n104_is_named() {
    let error = refuse(&edited("XX*1234567893", "XX*1234567890"));
    assert_eq!((error.segment_id.as_str(), error.element), ("N1", Some(4)));
}

#[test]
fn given_truncated_files_when_parsed_then_every_cut_is_refused() {
    let text = paid();
    // Every cut short of the whole file, at every byte of the last three segments and a
    // spread elsewhere.
    let length = text.len();
    for cut in (0..length - 40).step_by(7).chain(length - 40..length - 1) {
        let prefix = &text.as_bytes()[..cut];
        assert!(
            claimledger_x12::parse_835(prefix).is_err(),
            "a file cut at byte {cut} was accepted"
        );
    }
}

#[test]
fn given_wrong_delimiters_when_parsed_then_the_file_is_refused() {
    // The body uses '|' while the ISA declares '*'.
    let text = paid();
    let (isa, body) = text.split_at(106);
    let piped = format!("{isa}{}", body.replace('*', "|"));
    let error = refuse(&piped);
    assert_eq!(error.segment_number, 2);
    // An ISA whose element separator is a letter.
    let error = refuse(&text.replacen("ISA*", "ISAA", 1));
    assert_eq!(error.problem, ParseProblem::NotAnInterchange);
    // Component and element separators the same.
    let mut bytes = text.into_bytes();
    bytes[104] = b'*';
    let error = claimledger_x12::parse_835(&bytes).unwrap_err();
    assert!(matches!(error.problem, ParseProblem::InvalidDelimiters(_)));
}

#[test]
fn given_non_ascii_bytes_when_parsed_then_the_byte_and_its_offset_are_named() {
    let text = edited("N1*PR*ACME HEALTH", "N1*PR*ACMÉ HEALTH");
    let error = refuse(&text);
    assert_eq!(error.segment_id, "N1");
    assert!(matches!(
        error.problem,
        ParseProblem::NotPrintableAscii { byte: 0xC3, .. }
    ));
    let error = refuse(&edited("N1*PR*ACME HEALTH", "N1*PR*ACME\u{7}HEALTH"));
    assert!(matches!(
        error.problem,
        ParseProblem::NotPrintableAscii { byte: 7, .. }
    ));
}

#[test]
fn given_a_999_when_read_as_an_835_then_it_is_refused() {
    let error = claimledger_x12::parse_835(&read_golden("999_rejected_set.x12")).unwrap_err();
    assert_eq!((error.segment_id.as_str(), error.element), ("GS", Some(1)));
    let error = claimledger_x12::parse_999(&read_golden("835_paid.x12")).unwrap_err();
    assert_eq!((error.segment_id.as_str(), error.element), ("GS", Some(1)));
}

/// A deterministic byte stream (64-bit LCG), so a failure reproduces.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

#[test]
fn given_ten_megabytes_of_garbage_when_parsed_then_it_is_refused_cleanly() {
    let garbage = noise(7, 10 * 1024 * 1024);
    assert!(claimledger_x12::parse_835(&garbage).is_err());
    assert!(claimledger_x12::parse_999(&garbage).is_err());
    // The same garbage behind a valid ISA, and printable garbage with X12 punctuation.
    let mut behind_isa = paid().as_bytes()[..106].to_vec();
    behind_isa.extend_from_slice(&garbage);
    assert!(claimledger_x12::parse_835(&behind_isa).is_err());
    let printable: Vec<u8> = garbage
        .iter()
        .map(|byte| b"AB01*:~\n SEGCLPSVC"[usize::from(*byte) % 18])
        .collect();
    let mut text = paid().as_bytes()[..106].to_vec();
    text.extend_from_slice(&printable);
    assert!(claimledger_x12::parse_835(&text).is_err());
}

#[test]
fn given_mutated_golden_files_when_parsed_then_nothing_panics() {
    for name in GOLDEN_835S {
        let original = read_golden(name);
        for seed in 0..200_u64 {
            let mut bytes = original.clone();
            for (index, value) in noise(seed, 6).chunks(2).map(|pair| (pair[0], pair[1])) {
                let position = usize::from(index) * bytes.len() / 256;
                bytes[position] = b"*:~^0123456789.-ACLPSVE\n"[usize::from(value) % 24];
            }
            // Either answer is fine; a panic is not.
            let _ = claimledger_x12::parse_835(&bytes);
            let _ = claimledger_x12::parse_999(&bytes);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = claimledger_x12::parse_835(&bytes);
        let _ = claimledger_x12::parse_999(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_isa_never_panic(
        body in proptest::collection::vec(
            prop_oneof![Just(b'*'), Just(b'~'), Just(b':'), Just(b'\n'), 0x20_u8..0x7f],
            0..2048,
        ),
    ) {
        let mut bytes = read_golden("835_paid.x12")[..106].to_vec();
        bytes.extend_from_slice(&body);
        let _ = claimledger_x12::parse_835(&bytes);
        let _ = claimledger_x12::parse_999(&bytes);
    }
}

fn refuse_837(claim: Claim837) -> claimledger_x12::BuildError {
    match render_837p(&fixtures::interchange(vec![vec![claim]])) {
        Ok(text) => panic!("rendered:\n{text}"),
        Err(error) => error,
    }
}

#[test]
fn given_a_delimiter_in_a_name_when_rendered_then_the_error_names_nm103_of_loop_2010ba() {
    let mut claim = fixtures::self_claim();
    claim.subscriber.person.name.last = "O*NEIL".to_owned();
    assert_eq!(
        refuse_837(claim).to_string(),
        "NM1-03 of loop 2010BA: contains the element separator (member MBR1001)"
    );
}

#[test]
fn given_values_the_validators_let_through_when_rendered_then_each_is_refused() {
    let claim = fixtures::self_claim;
    let mut long_pcn = claim();
    long_pcn.patient_control_number = "C".repeat(21);
    let error = refuse_837(long_pcn);
    assert_eq!(
        error.to_string().split(':').next(),
        Some("CLM-01 of loop 2300")
    );

    let mut bad_npi = claim();
    bad_npi.billing_provider.npi = "1234567890".to_owned();
    let error = refuse_837(bad_npi);
    assert_eq!(
        (error.location.segment, error.location.loop_id),
        ("NM1", "2010AA")
    );
    assert!(matches!(error.problem, BuildProblem::InvalidNpi(_)));

    let mut bad_referring = claim();
    if let Some(referring) = bad_referring.referring_provider.as_mut() {
        referring.npi = "1558598798".to_owned();
    }
    assert_eq!(refuse_837(bad_referring).location.loop_id, "2310A");

    let mut pointer = claim();
    pointer.lines[0].diagnosis_pointers = vec![3];
    assert_eq!(
        refuse_837(pointer).problem,
        BuildProblem::PointerOutOfRange {
            pointer: 3,
            diagnoses: 2
        }
    );

    let mut five_pointers = claim();
    five_pointers.diagnoses = ["M54.50", "M62.830", "M79.18", "M25.50", "M54.2"]
        .map(str::to_owned)
        .to_vec();
    five_pointers.lines[0].diagnosis_pointers = vec![1, 2, 3, 4, 5];
    assert_eq!(
        refuse_837(five_pointers).problem,
        BuildProblem::TooMany { count: 5, max: 4 }
    );

    let mut unlisted = claim();
    unlisted.lines[0].procedure_code = "97139".to_owned();
    let error = refuse_837(unlisted);
    assert_eq!(
        error.to_string(),
        "SV1-01 of loop 2400: procedure 97139 is unlisted and needs a description (SV101-7) \
         (CLM01 CL0001, LX 1)"
    );

    let mut duplicate = claim();
    duplicate.lines[1].line_control_number = "CL0001-1".to_owned();
    assert!(matches!(
        refuse_837(duplicate).problem,
        BuildProblem::DuplicateLineControlNumber(_)
    ));

    let mut long_control = claim();
    long_control.lines[0].line_control_number = "L".repeat(31);
    assert_eq!(
        refuse_837(long_control).problem,
        BuildProblem::TooLong { max: 30 }
    );

    let mut modifiers = claim();
    modifiers.lines[0].modifiers = ["GP", "59", "KX", "XS", "CQ"].map(str::to_owned).to_vec();
    assert_eq!(
        refuse_837(modifiers).problem,
        BuildProblem::TooMany { count: 5, max: 4 }
    );

    let mut many_lines = claim();
    many_lines.lines = (0..51)
        .map(|index| {
            let mut line = fixtures::line("97140", &["GP"], 5000, 1);
            line.line_control_number = format!("L{index}");
            line
        })
        .collect();
    assert_eq!(
        refuse_837(many_lines).problem,
        BuildProblem::TooMany { count: 51, max: 50 }
    );

    let mut diagnoses = claim();
    diagnoses.diagnoses = (0..13).map(|index| format!("M54.{index}")).collect();
    assert_eq!(
        refuse_837(diagnoses).problem,
        BuildProblem::TooMany { count: 13, max: 12 }
    );

    let mut bad_diagnosis = claim();
    bad_diagnosis.diagnoses[1] = "54.50".to_owned();
    assert!(matches!(
        refuse_837(bad_diagnosis).problem,
        BuildProblem::InvalidDiagnosis(_)
    ));

    let mut negative = claim();
    negative.lines[0].charge_cents = -100;
    assert_eq!(
        refuse_837(negative).problem,
        BuildProblem::NegativeAmount(-100)
    );

    let mut zero = claim();
    for line in &mut zero.lines {
        line.charge_cents = 0;
    }
    assert_eq!(refuse_837(zero).problem, BuildProblem::ZeroTotal);

    let mut no_address = claim();
    no_address.subscriber.person.address = None;
    assert_eq!(refuse_837(no_address).location.loop_id, "2010BA");

    let mut dependent = fixtures::dependent_claim();
    if let Patient::Dependent { person, .. } = &mut dependent.patient {
        person.address = None;
    }
    assert_eq!(refuse_837(dependent).location.loop_id, "2010CA");

    let mut filing = claim();
    filing.subscriber.filing_indicator = "XX".to_owned();
    assert_eq!(refuse_837(filing).location.element, 9);

    let mut non_ascii = claim();
    non_ascii.payer.name = "ACMÉ".to_owned();
    assert_eq!(
        refuse_837(non_ascii).problem,
        BuildProblem::NotPrintableAscii('É')
    );

    let mut empty_f8 = claim();
    empty_f8.frequency = Frequency::Replacement {
        payer_claim_number: String::new(),
    };
    assert_eq!(refuse_837(empty_f8).problem, BuildProblem::Empty);
}

#[test]
fn given_control_numbers_out_of_range_when_rendered_then_the_envelope_element_is_named() {
    let mut interchange = fixtures::interchange(vec![vec![fixtures::self_claim()]]);
    interchange.group_control_number = 0;
    let error = render_837p(&interchange).unwrap_err();
    assert_eq!(
        error.to_string(),
        "GS-06 of loop GS: control number 0 is not between 1 and 999999999"
    );
    let mut interchange = fixtures::interchange(vec![vec![fixtures::self_claim()]]);
    interchange.transactions[0].control_number = 1_000_000_000;
    assert_eq!(
        render_837p(&interchange).unwrap_err().location.segment,
        "ST"
    );
    let mut interchange = fixtures::interchange(vec![]);
    interchange.transactions.clear();
    assert_eq!(
        render_837p(&interchange).unwrap_err().problem,
        BuildProblem::NoEntries
    );
}

#[test]
fn given_the_rendered_837s_when_read_back_then_clm02_is_the_sum_of_sv102() {
    for (name, text) in crate::golden::rendered_837s() {
        let mut claim_total: Option<i64> = None;
        let mut lines_total = 0_i64;
        let check = |claim_total: Option<i64>, lines_total: i64| {
            if let Some(total) = claim_total {
                assert_eq!(total, lines_total, "{name}: CLM02 ≠ Σ SV102");
            }
        };
        for segment in text.split("~\n") {
            let elements: Vec<&str> = segment.split('*').collect();
            match elements[0] {
                "CLM" | "SE" => {
                    check(claim_total, lines_total);
                    claim_total = (elements[0] == "CLM")
                        .then(|| claimledger_x12::money::parse_cents(elements[2]).expect("CLM02"));
                    lines_total = 0;
                }
                "SV1" => {
                    lines_total += claimledger_x12::money::parse_cents(elements[2]).expect("SV102");
                }
                _ => {}
            }
        }
    }
}

#[test]
fn given_malformed_999s_when_parsed_then_the_segment_is_named() {
    let text = String::from_utf8(read_golden("999_rejected_set.x12")).expect("ASCII");
    let refuse_999 = |from: &str, to: &str| {
        assert!(text.contains(from), "{from:?} is in the golden file");
        claimledger_x12::parse_999(text.replacen(from, to, 1).as_bytes()).unwrap_err()
    };
    let error = refuse_999("IK3*NM1*24**8~\n", "");
    assert_eq!(error.segment_id, "SE");
    let error = refuse_999("IK3*NM1*24**8~\nIK4*3**1~\n", "IK4*3**1~\nIK3*NM1*24**8~\n");
    assert_eq!(
        (error.segment_id.as_str(), error.segment_number),
        ("IK4", 8)
    );
    let error = refuse_999("IK5*R*5", "IK5*Q*5");
    assert_eq!((error.segment_id.as_str(), error.element), ("IK5", Some(1)));
    let error = refuse_999("IK4*1*1028", "IK4*X*1028");
    assert_eq!(
        (error.segment_id.as_str(), error.element, error.component),
        ("IK4", Some(1), Some(1))
    );
}
