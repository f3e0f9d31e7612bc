//! Renders an [`Interchange837`] as 005010X222A1 text: the envelope, the submitter and receiver,
//! the HL tree (billing provider → subscriber → patient) and each claim with its lines, checking
//! what the validators do not (CLM01 length, NPI check digits, CLM02 = Σ SV102, pointers, SV101-7).

use claimledger_billing::Npi;

use super::model::{
    Address, Assignment, BenefitsAssignment, BillingProvider, Claim837, Frequency,
    Interchange837, Line837, Patient, Payer, PayerResponsibility, Person, Provider,
    Relationship, ReleaseOfInformation, Sex, Subscriber, TaxIdentifier, Transaction837, Usage,
};
use crate::error::{BuildError, BuildProblem};
use crate::money::format_cents;
use crate::writer::{
    EMPTY, Element, InterchangeHeader, SegmentWriter, Value, ccyymmdd, code, control_range,
    hhmm, nine_digits, optional, text,
};

/// The implementation guide this builder writes.
const VERSION: &str = "005010X222A1";
/// Clearinghouses reject longer patient control numbers (X12 allows 38).
const MAX_PATIENT_CONTROL_NUMBER: usize = 20;
const MAX_LINE_CONTROL_NUMBER: usize = 30;
const MAX_LINES: usize = 50;
const MAX_DIAGNOSES: usize = 12;
const MAX_MODIFIERS: usize = 4;
const MAX_POINTERS: usize = 4;
/// Unlisted procedures, which payers price by their description.
const CODES_NEEDING_A_DESCRIPTION: [&str; 1] = ["97139"];
/// SBR09 values of the 005010X222A1 code list.
const FILING_INDICATORS: [&str; 22] = [
    "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM", "LM",
    "MA", "MB", "MC", "OF", "TV", "VA", "WC",
];

/// Renders `interchange` as an 837P file, or names the first value that cannot be written.
pub fn render_837p(interchange: &Interchange837) -> Result<String, BuildError> {
    let partner = &interchange.partner;
    let mut w = SegmentWriter::new(interchange.delimiters, interchange.layout);
    let usage = match partner.usage {
        Usage::Test => "T",
        Usage::Production => "P",
    };
    w.isa(&InterchangeHeader {
        sender_qualifier: &partner.sender_qualifier,
        sender_id: &partner.sender_id,
        receiver_qualifier: &partner.receiver_qualifier,
        receiver_id: &partner.receiver_id,
        created: interchange.created,
        control_number: interchange.interchange_control_number,
        usage,
    })?;
    w.enter("GS");
    let group_control = interchange.group_control_number;
    let gs06 = nine_digits(group_control)
        .map(|_| group_control.to_string())
        .ok_or_else(|| w.error("GS", 6, control_range(group_control)))?;
    let date = date_text(&w, "GS", 4, interchange.created.date())?;
    let time = hhmm(interchange.created);
    w.segment(
        "GS",
        &[
            code("HC").into(),
            text(&partner.application_sender_code, 2, 15).into(),
            text(&partner.application_receiver_code, 2, 15).into(),
            code(&date).into(),
            code(&time).into(),
            code(&gs06).into(),
            code("X").into(),
            code(VERSION).into(),
        ],
    )?;
    if interchange.transactions.is_empty() {
        return Err(w.error("ST", 0, BuildProblem::NoEntries));
    }
    for transaction in &interchange.transactions {
        write_transaction(&mut w, interchange, transaction, &date, &time)?;
    }
    w.set_context(String::new());
    w.enter("GE");
    let count = interchange.transactions.len().to_string();
    w.segment("GE", &[code(&count).into(), code(&gs06).into()])?;
    w.enter("IEA");
    let isa13 = format!("{:09}", interchange.interchange_control_number);
    w.segment("IEA", &[code("1").into(), code(&isa13).into()])?;
    Ok(w.finish())
}

fn write_transaction(
    w: &mut SegmentWriter,
    interchange: &Interchange837,
    transaction: &Transaction837,
    date: &str,
    time: &str,
) -> Result<(), BuildError> {
    let partner = &interchange.partner;
    let number = transaction.control_number;
    let st02 = nine_digits(number)
        .map(|_| format!("{number:04}"))
        .ok_or_else(|| w.error("ST", 2, control_range(number)))?;
    w.set_context(format!("ST02 {st02}"));
    w.start_transaction();
    w.enter("ST");
    w.segment("ST", &[code("837").into(), code(&st02).into(), code(VERSION).into()])?;
    w.segment(
        "BHT",
        &[
            code("0019").into(),
            code("00").into(),
            text(&transaction.reference, 1, 50).into(),
            code(date).into(),
            code(time).into(),
            code("CH").into(),
        ],
    )?;
    w.enter("1000A");
    let submitter = &partner.submitter;
    organisation(w, "41", &submitter.name, "46", &submitter.etin)?;
    if !submitter.contact_phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(w.error("PER", 4, BuildProblem::NotDigits));
    }
    w.segment(
        "PER",
        &[
            code("IC").into(),
            text(&submitter.contact_name, 1, 60).into(),
            code("TE").into(),
            text(&submitter.contact_phone, 10, 10).into(),
        ],
    )?;
    w.enter("1000B");
    organisation(w, "40", &partner.receiver_name, "46", &partner.receiver_id_code)?;
    if transaction.claims.is_empty() {
        return Err(w.error("CLM", 0, BuildProblem::NoEntries));
    }
    let mut hl = 0_usize;
    for (provider, claims) in group_by(&transaction.claims, |claim| &claim.billing_provider) {
        hl += 1;
        let provider_hl = hl;
        write_billing_provider(w, provider, provider_hl)?;
        for ((subscriber, payer, patient), claims) in group_by(&claims, parties) {
            hl += 1;
            let subscriber_hl = hl;
            write_subscriber(w, subscriber, payer, patient, subscriber_hl, provider_hl)?;
            if let Patient::Dependent {
                relationship,
                person,
            } = patient
            {
                hl += 1;
                write_patient(w, *relationship, person, hl, subscriber_hl)?;
            }
            for claim in claims {
                write_claim(w, claim)?;
            }
        }
    }
    w.set_context(format!("ST02 {st02}"));
    w.enter("SE");
    let count = w.transaction_segment_count().to_string();
    w.segment("SE", &[code(&count).into(), code(&st02).into()])
}

/// The 2000B/2000C key: claims share a subscriber loop when subscriber, payer and patient agree.
fn parties<'a>(claim: &&'a Claim837) -> (&'a Subscriber, &'a Payer, &'a Patient) {
    (&claim.subscriber, &claim.payer, &claim.patient)
}

/// Groups `items` by `key`, keeping the order in which each key first appears.
fn group_by<'a, T, K: PartialEq>(items: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<(K, Vec<&'a T>)> {
    let mut groups: Vec<(K, Vec<&'a T>)> = Vec::new();
    for item in items {
        let item_key = key(item);
        match groups.iter_mut().find(|(group, _)| *group == item_key) {
            Some((_, members)) => members.push(item),
            None => groups.push((item_key, vec![item])),
        }
    }
    groups
}

fn organisation(
    w: &mut SegmentWriter,
    entity: &str,
    name: &str,
    qualifier: &str,
    id: &str,
) -> Result<(), BuildError> {
    w.segment(
        "NM1",
        &[
            code(entity).into(),
            code("2").into(),
            text(name, 1, 60).into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            code(qualifier).into(),
            text(id, 2, 80).into(),
        ],
    )
}

fn individual(
    w: &mut SegmentWriter,
    entity: &str,
    name: &super::model::PersonName,
    qualifier: Option<&str>,
    id: Option<&str>,
) -> Result<(), BuildError> {
    w.segment(
        "NM1",
        &[
            code(entity).into(),
            code("1").into(),
            text(&name.last, 1, 60).into(),
            text(&name.first, 1, 35).into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            optional(qualifier, 1, 2).into(),
            optional(id, 2, 80).into(),
        ],
    )
}

fn checked_npi(w: &SegmentWriter, npi: &str) -> Result<(), BuildError> {
    Npi::parse("NM109", npi)
        .map(|_| ())
        .map_err(|_| w.error("NM1", 9, BuildProblem::InvalidNpi(npi.to_owned())))
}

fn address(w: &mut SegmentWriter, address: &Address) -> Result<(), BuildError> {
    w.segment(
        "N3",
        &[
            text(&address.line1, 1, 55).into(),
            optional(address.line2.as_deref(), 1, 55).into(),
        ],
    )?;
    let zip = &address.postal_code;
    if !zip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(w.error("N4", 3, BuildProblem::NotDigits));
    }
    if zip.len() != 5 && zip.len() != 9 {
        return Err(w.error(
            "N4",
            3,
            BuildProblem::NotInCodeList {
                value: zip.clone(),
                allowed: "a 5- or 9-digit ZIP code",
            },
        ));
    }
    w.segment(
        "N4",
        &[
            text(&address.city, 2, 30).into(),
            text(&address.state, 2, 2).into(),
            text(zip, 5, 9).into(),
        ],
    )
}

fn taxonomy(w: &mut SegmentWriter, qualifier: &str, code_value: &str) -> Result<(), BuildError> {
    w.segment(
        "PRV",
        &[
            code(qualifier).into(),
            code("PXC").into(),
            text(code_value, 10, 10).into(),
        ],
    )
}

fn write_billing_provider(
    w: &mut SegmentWriter,
    provider: &BillingProvider,
    hl: usize,
) -> Result<(), BuildError> {
    w.set_context(format!("billing provider {}", provider.npi));
    w.enter("2000A");
    let id = hl.to_string();
    w.segment(
        "HL",
        &[code(&id).into(), EMPTY.into(), code("20").into(), code("1").into()],
    )?;
    if let Some(taxonomy_code) = &provider.taxonomy {
        taxonomy(w, "BI", taxonomy_code)?;
    }
    w.enter("2010AA");
    checked_npi(w, &provider.npi)?;
    organisation(w, "85", &provider.name, "XX", &provider.npi)?;
    address(w, &provider.address)?;
    let (qualifier, number) = match &provider.tax_id {
        TaxIdentifier::Ein(number) => ("EI", number),
        TaxIdentifier::Ssn(number) => ("SY", number),
    };
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(w.error("REF", 2, BuildProblem::NotDigits));
    }
    w.segment("REF", &[code(qualifier).into(), text(number, 9, 9).into()])
}

fn demographics(w: &mut SegmentWriter, person: &Person) -> Result<(), BuildError> {
    let birth = date_text(w, "DMG", 2, person.birth_date)?;
    let sex = match person.sex {
        Sex::Female => "F",
        Sex::Male => "M",
        Sex::Unknown => "U",
    };
    w.segment(
        "DMG",
        &[code("D8").into(), code(&birth).into(), code(sex).into()],
    )
}

fn write_subscriber(
    w: &mut SegmentWriter,
    subscriber: &Subscriber,
    payer: &Payer,
    patient: &Patient,
    hl: usize,
    parent: usize,
) -> Result<(), BuildError> {
    w.set_context(format!("member {}", subscriber.member_id));
    w.enter("2000B");
    let is_patient = matches!(patient, Patient::Subscriber);
    let (id, parent) = (hl.to_string(), parent.to_string());
    let children = if is_patient { "0" } else { "1" };
    w.segment(
        "HL",
        &[code(&id).into(), code(&parent).into(), code("22").into(), code(children).into()],
    )?;
    let responsibility = match subscriber.responsibility {
        PayerResponsibility::Primary => "P",
        PayerResponsibility::Secondary => "S",
        PayerResponsibility::Tertiary => "T",
    };
    let filing = subscriber.filing_indicator.as_str();
    if !FILING_INDICATORS.contains(&filing) {
        return Err(w.error(
            "SBR",
            9,
            BuildProblem::NotInCodeList {
                value: filing.to_owned(),
                allowed: "the SBR09 claim filing indicator codes (CI, BL, MB, WC, AM, …)",
            },
        ));
    }
    let relationship = if is_patient { "18" } else { "" };
    w.segment(
        "SBR",
        &[
            code(responsibility).into(),
            optional(Some(relationship).filter(|r| !r.is_empty()), 2, 2).into(),
            optional(subscriber.group_number.as_deref(), 1, 50).into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            EMPTY.into(),
            code(filing).into(),
        ],
    )?;
    w.enter("2010BA");
    let person = &subscriber.person;
    individual(w, "IL", &person.name, Some("MI"), Some(&subscriber.member_id))?;
    match (&person.address, is_patient) {
        (Some(place), _) => address(w, place)?,
        (None, true) => return Err(w.error("N3", 1, BuildProblem::Empty)),
        (None, false) => {}
    }
    demographics(w, person)?;
    w.enter("2010BB");
    organisation(w, "PR", &payer.name, "PI", &payer.id)
}

fn write_patient(
    w: &mut SegmentWriter,
    relationship: Relationship,
    person: &Person,
    hl: usize,
    parent: usize,
) -> Result<(), BuildError> {
    w.enter("2000C");
    let (id, parent) = (hl.to_string(), parent.to_string());
    w.segment(
        "HL",
        &[code(&id).into(), code(&parent).into(), code("23").into(), code("0").into()],
    )?;
    let pat01 = match relationship {
        Relationship::Spouse => "01",
        Relationship::Child => "19",
        Relationship::Employee => "20",
        Relationship::Unknown => "21",
        Relationship::OrganDonor => "39",
        Relationship::CadaverDonor => "40",
        Relationship::LifePartner => "53",
        Relationship::Other => "G8",
    };
    w.segment("PAT", &[code(pat01).into()])?;
    w.enter("2010CA");
    individual(w, "QC", &person.name, None, None)?;
    let Some(place) = &person.address else {
        return Err(w.error("N3", 1, BuildProblem::Empty));
    };
    address(w, place)?;
    demographics(w, person)
}

fn date_text(
    w: &SegmentWriter,
    segment: &'static str,
    element: u8,
    date: chrono::NaiveDate,
) -> Result<String, BuildError> {
    ccyymmdd(date).ok_or_else(|| {
        w.error(segment, element, BuildProblem::DateOutOfRange(date.to_string()))
    })
}

fn write_claim(w: &mut SegmentWriter, claim: &Claim837) -> Result<(), BuildError> {
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
            return Err(w.error("HI", element, BuildProblem::InvalidDiagnosis(written.clone())));
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
        return Err(w.error("SV1", 1, BuildProblem::TooMany { count, max: MAX_MODIFIERS }));
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
        return Err(w.error("SV1", 7, BuildProblem::TooMany { count, max: MAX_POINTERS }));
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
