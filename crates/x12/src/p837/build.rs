//! Renders an [`Interchange837`] as 005010X222A1 text: the envelope, the submitter and receiver,
//! and the HL tree (billing provider → subscriber → patient) whose claims `claim` writes; NPIs are
//! checked against their Luhn digit here, which the validators do not do.

use claimledger_billing::Npi;

use super::model::{
    Address, BillingProvider, Claim837, Interchange837, Patient, Payer, PayerResponsibility,
    Person, PersonName, Relationship, Sex, Subscriber, TaxIdentifier, Transaction837, Usage,
};
use crate::error::{BuildError, BuildProblem};
use crate::writer::{
    EMPTY, InterchangeHeader, SegmentWriter, ccyymmdd, code, control_range, hhmm, nine_digits,
    optional, text,
};

/// The implementation guide this builder writes.
const VERSION: &str = "005010X222A1";
/// SBR09 values of the 005010X222A1 code list.
const FILING_INDICATORS: [&str; 22] = [
    "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM", "LM", "MA",
    "MB", "MC", "OF", "TV", "VA", "WC",
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
    w.segment(
        "ST",
        &[code("837").into(), code(&st02).into(), code(VERSION).into()],
    )?;
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
    organisation(
        w,
        "40",
        &partner.receiver_name,
        "46",
        &partner.receiver_id_code,
    )?;
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
                super::claim::write_claim(w, claim)?;
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

pub(super) fn individual(
    w: &mut SegmentWriter,
    entity: &str,
    name: &PersonName,
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

pub(super) fn checked_npi(w: &SegmentWriter, npi: &str) -> Result<(), BuildError> {
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

pub(super) fn taxonomy(
    w: &mut SegmentWriter,
    qualifier: &str,
    code_value: &str,
) -> Result<(), BuildError> {
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
        &[
            code(&id).into(),
            EMPTY.into(),
            code("20").into(),
            code("1").into(),
        ],
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
        &[
            code(&id).into(),
            code(&parent).into(),
            code("22").into(),
            code(children).into(),
        ],
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
    individual(
        w,
        "IL",
        &person.name,
        Some("MI"),
        Some(&subscriber.member_id),
    )?;
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
        &[
            code(&id).into(),
            code(&parent).into(),
            code("23").into(),
            code("0").into(),
        ],
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

pub(super) fn date_text(
    w: &SegmentWriter,
    segment: &'static str,
    element: u8,
    date: chrono::NaiveDate,
) -> Result<String, BuildError> {
    ccyymmdd(date).ok_or_else(|| {
        w.error(
            segment,
            element,
            BuildProblem::DateOutOfRange(date.to_string()),
        )
    })
}
