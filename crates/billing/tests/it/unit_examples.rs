//! Every worked example of domain.md 1.3, the derived edge cases of 1.4 and the CMS/AMA table of
//! section 2, as named tests. Codes outside the product catalogue (97116, 97035) are plain numbers,
//! which the generic unit functions accept.

use std::collections::BTreeMap;

use claimledger_billing::units::{
    TieBreakRule, TimedMinutes, UnitAllocation, allocate_units, units_for_minutes,
};
use claimledger_billing::{Cents, TieBreak, UnitMethod};

fn allocate(
    method: UnitMethod,
    minutes: &[(u32, u32)],
    tie_break: &TieBreak<'_, u32>,
) -> UnitAllocation<u32> {
    let timed: Vec<TimedMinutes<u32>> = minutes
        .iter()
        .map(|&(code, minutes)| TimedMinutes { code, minutes })
        .collect();
    allocate_units(method, &timed, tie_break).expect("valid input")
}

fn cms(minutes: &[(u32, u32)]) -> UnitAllocation<u32> {
    allocate(UnitMethod::CmsTotalTime, minutes, &TieBreak::default())
}

fn ama(minutes: &[(u32, u32)]) -> UnitAllocation<u32> {
    allocate(UnitMethod::AmaPerCode, minutes, &TieBreak::default())
}

/// The billed units per code, leaving out codes with 0 units (documented, not billed).
fn billed(allocation: &UnitAllocation<u32>) -> BTreeMap<u32, u32> {
    allocation
        .codes
        .iter()
        .filter(|entry| entry.units > 0)
        .map(|entry| (entry.code, entry.units))
        .collect()
}

fn assignment(pairs: &[(u32, u32)]) -> BTreeMap<u32, u32> {
    pairs.iter().copied().collect()
}

/// Asserts the allocation is one of the assignments the manual allows, and that every allowed
/// assignment keeps each code inside the allocation's reported per-code range.
fn assert_one_of(allocation: &UnitAllocation<u32>, allowed: &[BTreeMap<u32, u32>]) {
    assert!(
        allowed.contains(&billed(allocation)),
        "{:?} is not among {allowed:?}",
        billed(allocation)
    );
    for assignment in allowed {
        for entry in &allocation.codes {
            let units = assignment.get(&entry.code).copied().unwrap_or(0);
            let (low, high) = entry.allowed_units;
            assert!(
                (low..=high).contains(&units),
                "{} may carry {units}, outside {low}..={high}",
                entry.code
            );
        }
    }
}

#[test]
fn given_the_unit_table_when_minutes_are_counted_then_each_band_matches_domain_1_1() {
    let bands = [
        (0, 7, 0),
        (8, 22, 1),
        (23, 37, 2),
        (38, 52, 3),
        (53, 67, 4),
        (68, 82, 5),
        (83, 97, 6),
        (98, 112, 7),
        (113, 127, 8),
    ];
    for (low, high, units) in bands {
        for minutes in low..=high {
            assert_eq!(units_for_minutes(minutes), units, "{minutes} min");
        }
    }
    assert_eq!(
        units_for_minutes(u32::MAX),
        ((u64::from(u32::MAX) + 7) / 15) as u32
    );
}

#[test]
fn given_example_1_when_cms_then_97112_gets_2_and_97110_gets_1() {
    let allocation = cms(&[(97112, 24), (97110, 23)]);
    assert_eq!(
        (allocation.total_timed_minutes, allocation.total_units),
        (47, 3)
    );
    assert_eq!(billed(&allocation), assignment(&[(97112, 2), (97110, 1)]));
    assert_eq!(allocation.tie, None);
}

#[test]
fn given_example_2_tie_when_cms_then_either_code_may_carry_2_units_but_never_3() {
    let allocation = cms(&[(97112, 20), (97110, 20)]);
    assert_eq!(allocation.total_units, 3);
    assert_one_of(
        &allocation,
        &[
            assignment(&[(97112, 2), (97110, 1)]),
            assignment(&[(97112, 1), (97110, 2)]),
        ],
    );
    assert!(allocation.codes.iter().all(|entry| entry.units < 3));
}

#[test]
fn given_example_2_tie_without_primary_or_fees_when_cms_then_the_lower_code_number_wins() {
    let allocation = cms(&[(97112, 20), (97110, 20)]);
    assert_eq!(billed(&allocation), assignment(&[(97110, 2), (97112, 1)]));
    assert!(
        allocation.summary().contains("manual allows either choice"),
        "{}",
        allocation.summary()
    );
    let tie = allocation.tie.expect("a tie");
    assert_eq!(
        (tie.tied_codes, tie.winners, tie.rule),
        (
            vec![97110, 97112],
            vec![97110],
            TieBreakRule::LowerCodeNumber
        )
    );
}

#[test]
fn given_example_2_tie_with_a_primary_code_when_cms_then_the_primary_wins_even_against_a_higher_fee()
 {
    let tie_break = TieBreak {
        primary: Some(97112),
        expected_allowed_per_unit: &[(97110, Cents(3500)), (97112, Cents(3000))],
    };
    let allocation = allocate(
        UnitMethod::CmsTotalTime,
        &[(97112, 20), (97110, 20)],
        &tie_break,
    );
    assert_eq!(billed(&allocation), assignment(&[(97112, 2), (97110, 1)]));
    assert_eq!(
        allocation.tie.map(|tie| tie.rule),
        Some(TieBreakRule::ClinicianPrimary)
    );
}

#[test]
fn given_example_2_tie_without_primary_when_cms_then_the_higher_expected_allowed_amount_wins() {
    let tie_break = TieBreak {
        primary: None,
        expected_allowed_per_unit: &[(97110, Cents(2879)), (97112, Cents(3273))],
    };
    let allocation = allocate(
        UnitMethod::CmsTotalTime,
        &[(97112, 20), (97110, 20)],
        &tie_break,
    );
    assert_eq!(billed(&allocation), assignment(&[(97112, 2), (97110, 1)]));
    assert_eq!(
        allocation.tie.map(|tie| tie.rule),
        Some(TieBreakRule::HigherExpectedAllowed)
    );
}

#[test]
fn given_example_3_when_cms_then_97140s_7_minutes_beat_97110s_3_leftover_minutes() {
    let allocation = cms(&[(97110, 33), (97140, 7)]);
    assert_eq!(
        (allocation.total_timed_minutes, allocation.total_units),
        (40, 3)
    );
    assert_eq!(billed(&allocation), assignment(&[(97110, 2), (97140, 1)]));
    let sentences: Vec<String> = allocation.codes.iter().map(ToString::to_string).collect();
    assert!(
        sentences[0].starts_with("97110: 33 min = 2 full 15-min blocks + 3 leftover min"),
        "{}",
        sentences[0]
    );
    assert!(
        sentences[1].contains("ranked #1") && sentences[1].ends_with("so 1 unit (CMS total time)"),
        "{}",
        sentences[1]
    );
}

#[test]
fn given_example_4_when_cms_then_ultrasound_is_documented_but_not_billed() {
    let allocation = cms(&[(97110, 18), (97140, 13), (97116, 10), (97035, 8)]);
    assert_eq!(
        (allocation.total_timed_minutes, allocation.total_units),
        (49, 3)
    );
    assert_eq!(
        billed(&allocation),
        assignment(&[(97110, 1), (97140, 1), (97116, 1)])
    );
    assert_eq!(allocation.units_of(97035), 0);
}

#[test]
fn given_example_5_three_way_tie_when_cms_then_exactly_one_unit_of_any_one_code() {
    let allocation = cms(&[(97112, 7), (97110, 7), (97140, 7)]);
    assert_eq!(
        (allocation.total_timed_minutes, allocation.total_units),
        (21, 1)
    );
    let allowed = [
        assignment(&[(97112, 1)]),
        assignment(&[(97110, 1)]),
        assignment(&[(97140, 1)]),
    ];
    assert_one_of(&allocation, &allowed);
    assert_eq!(billed(&allocation), assignment(&[(97110, 1)]));
    let tie_break = TieBreak {
        primary: Some(97140),
        expected_allowed_per_unit: &[],
    };
    let with_primary = allocate(
        UnitMethod::CmsTotalTime,
        &[(97112, 7), (97110, 7), (97140, 7)],
        &tie_break,
    );
    assert_eq!(billed(&with_primary), assignment(&[(97140, 1)]));
}

#[test]
fn given_one_code_for_7_minutes_alone_when_cms_then_no_units() {
    let allocation = cms(&[(97110, 7)]);
    assert_eq!((allocation.total_units, allocation.units_of(97110)), (0, 0));
    assert!(
        allocation.codes[0]
            .to_string()
            .contains("left no unit for leftovers"),
        "{}",
        allocation.codes[0]
    );
}

#[test]
fn given_two_short_services_totalling_8_minutes_when_cms_then_the_longer_one_bills_1_unit() {
    assert_eq!(
        billed(&cms(&[(97110, 5), (97140, 3)])),
        assignment(&[(97110, 1)])
    );
}

#[test]
fn given_two_10_minute_services_when_cms_then_1_unit_to_either_code() {
    let allocation = cms(&[(97110, 10), (97116, 10)]);
    assert_eq!(allocation.total_units, 1);
    assert_one_of(
        &allocation,
        &[assignment(&[(97110, 1)]), assignment(&[(97116, 1)])],
    );
}

#[test]
fn given_a_full_block_and_an_8_minute_service_when_cms_then_each_bills_1_unit() {
    assert_eq!(
        billed(&cms(&[(97140, 15), (97035, 8)])),
        assignment(&[(97140, 1), (97035, 1)])
    );
}

#[test]
fn given_97140_38_and_97124_8_when_cms_then_the_third_unit_follows_the_tie_policy() {
    let minutes = [(97140, 38), (97124, 8)];
    let allocation = cms(&minutes);
    assert_eq!(allocation.total_units, 3);
    assert_one_of(
        &allocation,
        &[
            assignment(&[(97140, 3)]),
            assignment(&[(97140, 2), (97124, 1)]),
        ],
    );
    assert_eq!(
        billed(&allocation),
        assignment(&[(97124, 1), (97140, 2)]),
        "lower code number by default"
    );
    let fees = TieBreak {
        primary: None,
        expected_allowed_per_unit: &[(97124, Cents(2976)), (97140, Cents(3100))],
    };
    assert_eq!(
        billed(&allocate(UnitMethod::CmsTotalTime, &minutes, &fees)),
        assignment(&[(97140, 3)])
    );
}

#[test]
fn given_one_hour_of_massage_when_cms_then_4_units() {
    assert_eq!(billed(&cms(&[(97124, 60)])), assignment(&[(97124, 4)]));
}

/// Pairs of (code, minutes) or (code, units).
type Minutes = &'static [(u32, u32)];

#[test]
fn given_the_section_2_cases_when_ama_then_each_code_stands_on_its_own_minutes() {
    // (minutes per code, AMA units billed per code, CMS total, AMA total)
    let cases: [(Minutes, Minutes, u32, u32); 6] = [
        (&[(97112, 24), (97110, 23)], &[(97112, 2), (97110, 2)], 3, 4),
        (&[(97112, 20), (97110, 20)], &[(97112, 1), (97110, 1)], 3, 2),
        (&[(97110, 33), (97140, 7)], &[(97110, 2)], 3, 2),
        (
            &[(97110, 18), (97140, 13), (97116, 10), (97035, 8)],
            &[(97110, 1), (97140, 1), (97116, 1), (97035, 1)],
            3,
            4,
        ),
        (&[(97112, 7), (97110, 7), (97140, 7)], &[], 1, 0),
        (&[(97110, 10), (97116, 10)], &[(97110, 1), (97116, 1)], 1, 2),
    ];
    for (minutes, expected, cms_total, ama_total) in cases {
        let per_code = ama(minutes);
        assert_eq!(billed(&per_code), assignment(expected), "{minutes:?}");
        assert_eq!(
            (cms(minutes).total_units, per_code.total_units),
            (cms_total, ama_total),
            "{minutes:?}"
        );
    }
}

#[test]
fn given_a_code_under_8_minutes_when_ama_then_the_reason_names_the_midpoint() {
    let allocation = ama(&[(97110, 33), (97140, 7)]);
    assert_eq!(
        allocation.codes[1].to_string(),
        "97140: 7 min is under the 8-minute midpoint of a unit, so 0 units (AMA per code)"
    );
}

#[test]
fn given_the_same_code_twice_when_allocated_then_the_error_names_the_code() {
    let timed = [
        TimedMinutes {
            code: 97110,
            minutes: 10,
        },
        TimedMinutes {
            code: 97110,
            minutes: 5,
        },
    ];
    let error = allocate_units(UnitMethod::CmsTotalTime, &timed, &TieBreak::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "minutes[97110]: code 97110 is given more than once; add its minutes into one entry"
    );
}
