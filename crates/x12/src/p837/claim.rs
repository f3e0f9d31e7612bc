//! Loop 2300 and its 2310A/2310B/2400 loops: one claim, its diagnoses, providers and lines, with
//! the checks the validators leave out (CLM01 length, CLM02 = Σ SV102, pointer range, SV101-7,
//! unique REF*6R).

use super::build::{checked_npi, date_text, individual, taxonomy};
use super::model::{
    Assignment, BenefitsAssignment, Claim837, Frequency, Line837, Provider, ReleaseOfInformation,
};
use crate::error::{BuildError, BuildProblem};
use crate::money::format_cents;
use crate::writer::{EMPTY, Element, SegmentWriter, Value, code, optional, text};

/// Clearinghouses reject longer patient control numbers (X12 allows 38).
const MAX_PATIENT_CONTROL_NUMBER: usize = 20;
const MAX_LINE_CONTROL_NUMBER: usize = 30;
const MAX_LINES: usize = 50;
const MAX_DIAGNOSES: usize = 12;
const MAX_MODIFIERS: usize = 4;
const MAX_POINTERS: usize = 4;
/// Unlisted procedures, which payers price by their description.
const CODES_NEEDING_A_DESCRIPTION: [&str; 1] = ["97139"];

pub(super) fn write_claim(w: &mut SegmentWriter, claim: &Claim837) -> Result<(), BuildError> {
    w.set_context(format!("CLM01 {}", claim.patient_control_number));
    w.enter("2300");
    if claim.patient_control_number.len() > MAX_PATIENT_CONTROL_NUMBER {
        return Err(w.error(
            "CLM",
            1,
            BuildProblem::TooLong {
                max: MAX_PATIENT_CONTROL_NUMBER,
            },
        ));
    }
    let total = claim_total(w, &claim.lines)?;
    let pos = &claim.place_of_service;
    if pos.len() != 2 || !pos.bytes().all(|b| b.is_ascii_digit()) {
        return Err(w.error(
            "CLM",
            5,
            BuildProblem::NotInCodeList {
                value: pos.clone(),
                allowed: "a two-digit place of service code",
            },
        ));
    }
    let (frequency, payer_claim_number) = match &claim.frequency {
        Frequency::Original => ("1", None),
        Frequency::Replacement { payer_claim_number } => ("7", Some(payer_claim_number)),
        Frequency::Void { payer_claim_number } => ("8", Some(payer_claim_number)),
    };
    let indicators = &claim.indicators;
    let yes_no = |flag: bool| if flag { "Y" } else { "N" };
    let assignment = match indicators.assignment {
        Assignment::Assigned => "A",
        Assignment::LabOnly => "B",
        Assignment::NotAssigned => "C",
    };
    let benefits = match indicators.benefits_assigned {
        BenefitsAssignment::Yes => "Y",
        BenefitsAssignment::No => "N",
        BenefitsAssignment::NotApplicable => "W",
    };
    let release = match indicators.release_of_information {
        ReleaseOfInformation::InformedConsent => "I",
        ReleaseOfInformation::Signed => "Y",
    };
    let total_text = format_cents(total);
    w.segment(
        "CLM",
        &[
            text(&claim.patient_control_number, 1, 38).into(),
            code(&total_text).into(),
            EMPTY.into(),
            EMPTY.into(),
            Element::Composite(vec![code(pos), code("B"), code(frequency)]),
            code(yes_no(indicators.provider_signature_on_file)).into(),
            code(assignment).into(),
            code(benefits).into(),
            code(release).into(),
        ],
    )?;
    let references = [
        ("9F", claim.referral_number.as_ref()),
        ("G1", claim.prior_authorization.as_ref()),
        ("F8", payer_claim_number),
    ];
    for (qualifier, value) in references {
        if let Some(value) = value {
            w.segment("REF", &[code(qualifier).into(), text(value, 1, 50).into()])?;
        }
    }
    write_diagnoses(w, &claim.diagnoses)?;
    if let Some(referring) = &claim.referring_provider {
        w.enter("2310A");
        named_provider(w, "DN", referring)?;
    }
    if let Some(rendering) = &claim.rendering_provider {
        // The billing provider renders when the NPIs agree; payers reject a redundant 2310B.
        if rendering.npi != claim.billing_provider.npi {
            w.enter("2310B");
            named_provider(w, "82", rendering)?;
            if let Some(taxonomy_code) = &rendering.taxonomy {
                taxonomy(w, "PE", taxonomy_code)?;
            }
        }
    }
    let mut control_numbers: Vec<&str> = Vec::with_capacity(claim.lines.len());
    for (index, line) in claim.lines.iter().enumerate() {
        w.set_context(format!(
            "CLM01 {}, LX {}",
            claim.patient_control_number,
            index + 1
        ));
        w.enter("2400");
        if control_numbers.contains(&line.line_control_number.as_str()) {
            return Err(w.error(
                "REF",
                2,
                BuildProblem::DuplicateLineControlNumber(line.line_control_number.clone()),
            ));
        }
        control_numbers.push(&line.line_control_number);
        write_line(w, index + 1, line, claim.diagnoses.len())?;
    }
    Ok(())
}

fn named_provider(
    w: &mut SegmentWriter,
    entity: &str,
    provider: &Provider,
) -> Result<(), BuildError> {
    checked_npi(w, &provider.npi)?;
    individual(w, entity, &provider.name, Some("XX"), Some(&provider.npi))
}

/// CLM02: the sum of SV102, computed here so that it cannot disagree with the lines.
fn claim_total(w: &SegmentWriter, lines: &[Line837]) -> Result<i64, BuildError> {
    if lines.is_empty() {
        return Err(w.error("LX", 0, BuildProblem::NoEntries));
    }
    if lines.len() > MAX_LINES {
        return Err(w.error(
            "LX",
            0,
            BuildProblem::TooMany {
                count: lines.len(),
                max: MAX_LINES,
            },
        ));
    }
    let mut total = 0_i64;
    for line in lines {
        if line.charge_cents < 0 {
            return Err(w.error("SV1", 2, BuildProblem::NegativeAmount(line.charge_cents)));
        }
        total = total
            .checked_add(line.charge_cents)
            .ok_or_else(|| w.error("CLM", 2, BuildProblem::TotalOverflow))?;
    }
    if total == 0 {
        return Err(w.error("CLM", 2, BuildProblem::ZeroTotal));
    }
    Ok(total)
}

fn write_diagnoses(w: &mut SegmentWriter, diagnoses: &[String]) -> Result<(), BuildError> {
    if diagnoses.is_empty() {
        return Err(w.error("HI", 1, BuildProblem::NoEntries));
    }
    if diagnoses.len() > MAX_DIAGNOSES {
        return Err(w.error(
            "HI",
            0,
            BuildProblem::TooMany {
                count: diagnoses.len(),
                max: MAX_DIAGNOSES,
            },
        ));
    }
    let codes: Vec<String> = diagnoses.iter().map(|code| code.replace('.', "")).collect();
    for (index, (written, stripped)) in diagnoses.iter().zip(&codes).enumerate() {
        let shaped = (3..=7).contains(&stripped.len())
            && stripped.starts_with(|c: char| c.is_ascii_uppercase())
            && stripped
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !shaped {
            let element = u8::try_from(index + 1).unwrap_or(u8::MAX);
            return Err(w.error(
                "HI",
                element,
                BuildProblem::InvalidDiagnosis(written.clone()),
            ));
        }
    }
    let elements: Vec<Element<'_>> = codes
        .iter()
        .enumerate()
        .map(|(index, stripped)| {
            let qualifier = if index == 0 { "ABK" } else { "ABF" };
            Element::Composite(vec![code(qualifier), code(stripped)])
        })
        .collect();
    w.segment("HI", &elements)
}

fn write_line(
    w: &mut SegmentWriter,
    number: usize,
    line: &Line837,
    diagnoses: usize,
) -> Result<(), BuildError> {
    let number_text = number.to_string();
    w.segment("LX", &[code(&number_text).into()])?;
    if line.modifiers.len() > MAX_MODIFIERS {
        let count = line.modifiers.len();
        return Err(w.error(
            "SV1",
            1,
            BuildProblem::TooMany {
                count,
                max: MAX_MODIFIERS,
            },
        ));
    }
    let needs_description = CODES_NEEDING_A_DESCRIPTION.contains(&line.procedure_code.as_str());
    if needs_description && line.description.is_none() {
        return Err(w.error(
            "SV1",
            1,
            BuildProblem::DescriptionRequired(line.procedure_code.clone()),
        ));
    }
    let mut procedure: Vec<Value<'_>> = vec![code("HC"), text(&line.procedure_code, 5, 5)];
    for slot in 0..MAX_MODIFIERS {
        procedure.push(optional(line.modifiers.get(slot).map(String::as_str), 2, 2));
    }
    procedure.push(optional(line.description.as_deref(), 1, 80));
    if line.units == 0 {
        return Err(w.error("SV1", 4, BuildProblem::ZeroUnits));
    }
    let pointers = check_pointers(w, &line.diagnosis_pointers, diagnoses)?;
    let charge = format_cents(line.charge_cents);
    let units = line.units.to_string();
    w.segment(
        "SV1",
        &[
            Element::Composite(procedure),
            code(&charge).into(),
            code("UN").into(),
            code(&units).into(),
            EMPTY.into(),
            EMPTY.into(),
            Element::Composite(pointers.iter().map(|p| code(p)).collect()),
        ],
    )?;
    let date = date_text(w, "DTP", 3, line.date_of_service)?;
    w.segment(
        "DTP",
        &[code("472").into(), code("D8").into(), code(&date).into()],
    )?;
    w.segment(
        "REF",
        &[
            code("6R").into(),
            text(&line.line_control_number, 1, MAX_LINE_CONTROL_NUMBER).into(),
        ],
    )
}

fn check_pointers(
    w: &SegmentWriter,
    pointers: &[u8],
    diagnoses: usize,
) -> Result<Vec<String>, BuildError> {
    if pointers.is_empty() {
        return Err(w.error("SV1", 7, BuildProblem::NoEntries));
    }
    if pointers.len() > MAX_POINTERS {
        let count = pointers.len();
        return Err(w.error(
            "SV1",
            7,
            BuildProblem::TooMany {
                count,
                max: MAX_POINTERS,
            },
        ));
    }
    for (index, &pointer) in pointers.iter().enumerate() {
        if pointer == 0 || usize::from(pointer) > diagnoses {
            return Err(w.error(
                "SV1",
                7,
                BuildProblem::PointerOutOfRange { pointer, diagnoses },
            ));
        }
        if pointers[..index].contains(&pointer) {
            return Err(w.error("SV1", 7, BuildProblem::DuplicatePointer(pointer)));
        }
    }
    Ok(pointers.iter().map(u8::to_string).collect())
}
