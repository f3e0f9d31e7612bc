//! The 837P inputs the tests render: a small chain billing one payer through one clearinghouse.

use chrono::NaiveDate;
use claimledger_x12::{
    Address, BillingProvider, Claim837, ClaimIndicators, Delimiters, Frequency, Interchange837,
    Layout, Line837, Patient, Payer, PayerResponsibility, Person, PersonName, Provider,
    Relationship, Sex, Submitter, Subscriber, TaxIdentifier, TradingPartner, Transaction837, Usage,
};

pub(crate) const BILLING_NPI: &str = "1234567893";
pub(crate) const REFERRING_NPI: &str = "1558598797";
pub(crate) const RENDERING_NPI: &str = "1987654328";
pub(crate) const SECOND_CLINIC_NPI: &str = "1456789019";

pub(crate) fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

pub(crate) fn partner() -> TradingPartner {
    TradingPartner {
        sender_qualifier: "ZZ".to_owned(),
        sender_id: "SUBMITTER01".to_owned(),
        receiver_qualifier: "30".to_owned(),
        receiver_id: "330897513".to_owned(),
        application_sender_code: "SUBMITTER01".to_owned(),
        application_receiver_code: "330897513".to_owned(),
        usage: Usage::Test,
        submitter: Submitter {
            name: "SERENITY MASSAGE GROUP".to_owned(),
            etin: "SUBMITTER01".to_owned(),
            contact_name: "JANE BILLER".to_owned(),
            contact_phone: "5555550100".to_owned(),
        },
        receiver_name: "OFFICE ALLY".to_owned(),
        receiver_id_code: "330897513".to_owned(),
    }
}

pub(crate) fn address(line1: &str) -> Address {
    Address {
        line1: line1.to_owned(),
        line2: None,
        city: "SPRINGFIELD".to_owned(),
        state: "IL".to_owned(),
        postal_code: "627011234".to_owned(),
    }
}

pub(crate) fn billing_provider() -> BillingProvider {
    BillingProvider {
        name: "SERENITY MASSAGE CLINIC".to_owned(),
        npi: BILLING_NPI.to_owned(),
        tax_id: TaxIdentifier::Ein("123456789".to_owned()),
        taxonomy: Some("225700000X".to_owned()),
        address: address("100 MAIN ST"),
    }
}

pub(crate) fn name(last: &str, first: &str) -> PersonName {
    PersonName {
        last: last.to_owned(),
        first: first.to_owned(),
    }
}

pub(crate) fn subscriber(member_id: &str, first: &str, birth: NaiveDate, sex: Sex) -> Subscriber {
    Subscriber {
        responsibility: PayerResponsibility::Primary,
        group_number: Some("GRP100".to_owned()),
        filing_indicator: "CI".to_owned(),
        member_id: member_id.to_owned(),
        person: Person {
            name: name("DOE", first),
            birth_date: birth,
            sex,
            address: Some(address("12 ELM ST")),
        },
    }
}

pub(crate) fn payer() -> Payer {
    Payer {
        name: "ACME HEALTH".to_owned(),
        id: "ACME1".to_owned(),
    }
}

pub(crate) fn line(code: &str, modifiers: &[&str], charge_cents: i64, units: u32) -> Line837 {
    Line837 {
        procedure_code: code.to_owned(),
        modifiers: modifiers.iter().map(|m| (*m).to_owned()).collect(),
        description: None,
        charge_cents,
        units,
        diagnosis_pointers: vec![1],
        date_of_service: date(2026, 3, 2),
        line_control_number: String::new(),
    }
}

/// Jane Doe, the subscriber, seen for 97140 (2 units, two diagnoses) and 97124 with 59.
pub(crate) fn self_claim() -> Claim837 {
    let mut manual = line("97140", &["GP"], 14000, 2);
    manual.diagnosis_pointers = vec![1, 2];
    manual.line_control_number = "CL0001-1".to_owned();
    let mut massage = line("97124", &["GP", "59"], 6050, 1);
    massage.line_control_number = "CL0001-2".to_owned();
    Claim837 {
        billing_provider: billing_provider(),
        subscriber: subscriber("MBR1001", "JANE", date(1980, 5, 17), Sex::Female),
        patient: Patient::Subscriber,
        payer: payer(),
        patient_control_number: "CL0001".to_owned(),
        place_of_service: "11".to_owned(),
        frequency: Frequency::Original,
        indicators: ClaimIndicators::default(),
        diagnoses: vec!["M54.50".to_owned(), "M62.830".to_owned()],
        prior_authorization: Some("AUTH55".to_owned()),
        referral_number: None,
        referring_provider: Some(Provider {
            name: name("SMITH", "ALAN"),
            npi: REFERRING_NPI.to_owned(),
            taxonomy: None,
        }),
        rendering_provider: Some(Provider {
            name: name("LEE", "KIM"),
            npi: RENDERING_NPI.to_owned(),
            taxonomy: Some("225700000X".to_owned()),
        }),
        lines: vec![manual, massage],
    }
}

/// Emma Doe, John Doe's child, seen for an unlisted 97139 (with its description); the clinic
/// renders the service itself, so no 2310B is written.
pub(crate) fn dependent_claim() -> Claim837 {
    let mut unlisted = line("97139", &["GP"], 7525, 1);
    unlisted.description = Some("MYOFASCIAL CUPPING".to_owned());
    unlisted.line_control_number = "CL0002-1".to_owned();
    Claim837 {
        subscriber: subscriber("MBR2002", "JOHN", date(1978, 1, 9), Sex::Male),
        patient: Patient::Dependent {
            relationship: Relationship::Child,
            person: Person {
                name: name("DOE", "EMMA"),
                birth_date: date(2012, 7, 30),
                sex: Sex::Female,
                address: Some(address("12 ELM ST")),
            },
        },
        patient_control_number: "CL0002".to_owned(),
        diagnoses: vec!["M79.18".to_owned()],
        prior_authorization: None,
        referral_number: Some("REF9001".to_owned()),
        referring_provider: None,
        rendering_provider: Some(Provider {
            name: name("CLINIC", "OWNER"),
            npi: BILLING_NPI.to_owned(),
            taxonomy: None,
        }),
        lines: vec![unlisted],
        ..self_claim()
    }
}

/// The self claim sent again as a replacement (7) of the payer's claim PAYERCLM7001.
pub(crate) fn replacement_claim() -> Claim837 {
    let mut claim = self_claim();
    claim.patient_control_number = "CL0001R".to_owned();
    claim.frequency = Frequency::Replacement {
        payer_claim_number: "PAYERCLM7001".to_owned(),
    };
    claim.lines.truncate(1);
    claim
}

/// The self claim voided (8).
pub(crate) fn void_claim() -> Claim837 {
    let mut claim = self_claim();
    claim.patient_control_number = "CL0001V".to_owned();
    claim.frequency = Frequency::Void {
        payer_claim_number: "PAYERCLM7001".to_owned(),
    };
    claim
}

/// A claim of a second clinic of the chain, billed in the same transaction set.
pub(crate) fn second_clinic_claim() -> Claim837 {
    let mut claim = self_claim();
    claim.billing_provider.name = "SERENITY MASSAGE EAST".to_owned();
    claim.billing_provider.npi = SECOND_CLINIC_NPI.to_owned();
    claim.billing_provider.address = address("200 OAK AVE");
    claim.patient_control_number = "CL0003".to_owned();
    claim
}

pub(crate) fn interchange(transactions: Vec<Vec<Claim837>>) -> Interchange837 {
    Interchange837 {
        partner: partner(),
        interchange_control_number: 17,
        group_control_number: 17,
        created: date(2026, 3, 5)
            .and_hms_opt(14, 30, 0)
            .expect("a valid time"),
        delimiters: Delimiters::default(),
        layout: Layout::LinePerSegment,
        transactions: transactions
            .into_iter()
            .enumerate()
            .map(|(index, claims)| {
                let number = u32::try_from(index + 1).expect("a few transactions");
                Transaction837 {
                    control_number: number,
                    reference: format!("BATCH17-{number}"),
                    claims,
                }
            })
            .collect(),
    }
}
