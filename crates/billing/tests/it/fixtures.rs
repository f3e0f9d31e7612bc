//! Shared builders for visits, policies and charge masters used by the claim and scrubber tests.

use chrono::NaiveDate;
use claimledger_billing::claim::Referral;
use claimledger_billing::{
    Cents, CptCode, Npi, PlaceOfService, PriceList, ServiceRecord, TaxId, Technique,
    UntimedService, Visit,
};

pub fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("valid date")
}

pub fn service(technique: Technique, minutes: u32, region: &str) -> ServiceRecord {
    ServiceRecord {
        technique,
        code: technique.billing_code(),
        minutes,
        body_region: region.to_owned(),
        description: None,
    }
}

pub fn modality(code: CptCode, minutes: u32) -> UntimedService {
    UntimedService {
        code,
        minutes,
        body_region: "lower back".to_owned(),
    }
}

/// A visit on 2026-03-02 in an office with two valid diagnoses and no services yet.
pub fn visit(services: Vec<ServiceRecord>, modalities: Vec<UntimedService>) -> Visit {
    Visit {
        date_of_service: date(2026, 3, 2),
        place_of_service: PlaceOfService::OFFICE,
        clinic_npi: Npi::parse("clinic_npi", "1558598797").expect("valid NPI"),
        tax_id: TaxId::parse("tax_id", "12-3456789").expect("valid tax id"),
        rendering_npi: Npi::parse("rendering_npi", "1234567893").expect("valid NPI"),
        services,
        modalities,
        diagnoses: vec!["M54.50".to_owned(), "M62.830".to_owned()],
        primary_code: None,
        referral: None,
    }
}

/// The typical visit: 30 min Swedish massage on the lower back, 15 min myofascial release on the
/// neck, 10 min strength exercise, and a hot pack.
pub fn typical_visit() -> Visit {
    visit(
        vec![
            service(Technique::SwedishMassage, 30, "lower back"),
            service(Technique::MyofascialRelease, 15, "neck"),
            service(Technique::StrengthExercise, 10, "lower back"),
        ],
        vec![modality(CptCode::HotColdPacks, 10)],
    )
}

pub fn referral(issued: NaiveDate, expires: NaiveDate) -> Referral {
    Referral {
        issued,
        expires,
        diagnoses: vec!["M54.50".to_owned()],
    }
}

/// A chain charge master with a price for every catalogue code.
pub fn charge_master() -> PriceList {
    PriceList::from_pairs(CptCode::ALL.into_iter().map(|code| {
        let price = match code {
            CptCode::HotColdPacks => Cents(1500),
            CptCode::Massage => Cents(4000),
            CptCode::ManualTherapy => Cents(4500),
            CptCode::TherapeuticExercise => Cents(4200),
            _ => Cents(5000),
        };
        (code, price)
    }))
}
