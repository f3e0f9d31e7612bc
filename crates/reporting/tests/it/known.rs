//! A small chain whose every figure is worked out by hand in the tests (two clinics, two payers,
//! seven lines over January and February 2026), and a chain built to have outliers.

use chrono::NaiveDate;

use crate::fixture::{ChainData, Line};

/// `2026-mm-dd`.
pub fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).expect("a real date")
}

/// Clinic 001 (WA) and Clinic 002 (OR); Medicare-like and Massage Only.
///
/// | # | clinic | payer | date | code | units | charge | outcome |
/// |---|---|---|---|---|---|---|---|
/// | 1 | 001 | Medicare-like | 01-05 | 97140 | 2 | 90.00 | paid 60.00 after 20 days |
/// | 2 | 001 | Medicare-like | 01-20 | 97124 | 2 | 90.00 | paid 50.00 after 30 days |
/// | 3 | 001 | Massage Only | 01-07 | 97140 | 1 | 45.00 | denied CO-50 after 15 days |
/// | 4 | 001 | Massage Only | 02-03 | 97124 | 3 | 135.00 | paid 96.00 after 10 days |
/// | 5 | 002 | Medicare-like | 02-10 | 97140 | 4 | 180.00 | paid 120.00 after 40 days |
/// | 6 | 002 | Massage Only | 02-11 | 97140 | 2 | 90.00 | denied CO-50 after 12 days |
/// | 7 | 002 | Medicare-like | 02-25 | 97124 | 1 | 45.00 | not adjudicated yet |
pub fn known_chain() -> ChainData {
    let mut data = ChainData::new(2, &["WA", "OR"], &["Medicare-like", "Massage Only"]);
    let (a, b) = (data.clinics[0].clone(), data.clinics[1].clone());
    let (medicare, massage) = (data.payers[0].clone(), data.payers[1].clone());
    data.lines = vec![
        Line::billed(&a, &medicare, day(1, 5), "97140", 2, 9_000).paid(6_000, 20),
        Line::billed(&a, &medicare, day(1, 20), "97124", 2, 9_000).paid(5_000, 30),
        Line::billed(&a, &massage, day(1, 7), "97140", 1, 4_500).denied("CO", "50", 15),
        Line::billed(&a, &massage, day(2, 3), "97124", 3, 13_500).paid(9_600, 10),
        Line::billed(&b, &medicare, day(2, 10), "97140", 4, 18_000).paid(12_000, 40),
        Line::billed(&b, &massage, day(2, 11), "97140", 2, 9_000).denied("CO", "50", 12),
        Line::billed(&b, &medicare, day(2, 25), "97124", 1, 4_500),
    ];
    data
}

/// Six clinics billing one payer 30 one-unit 97140 lines and 20 one-unit 97124 lines each in
/// March 2026. 97140 pays about $30.00 everywhere except Clinic 006 ($15.00); 97124 pays $25.00
/// everywhere, but Clinic 005 has half its 97124 lines denied.
pub fn chain_with_outliers() -> ChainData {
    let mut data = ChainData::new(6, &["WA"], &["Medicare-like"]);
    let payer = data.payers[0].clone();
    let yields_97140 = [2_950, 3_000, 3_050, 2_980, 3_020, 1_500];
    for (index, clinic) in data.clinics.clone().iter().enumerate() {
        for line in 0..30 {
            data.lines.push(
                Line::billed(clinic, &payer, day(3, 1 + line % 28), "97140", 1, 4_500)
                    .paid(yields_97140[index], 21),
            );
        }
        for line in 0..20 {
            let billed = Line::billed(clinic, &payer, day(3, 1 + line % 28), "97124", 1, 4_500);
            data.lines.push(if index == 4 && line % 2 == 0 {
                billed.denied("CO", "50", 14)
            } else {
                billed.paid(2_500, 21)
            });
        }
    }
    data
}
