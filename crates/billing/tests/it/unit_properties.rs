//! Property tests of the unit methods: the totals stay within what the minutes allow, per-code
//! units add up, more minutes never mean fewer units, and AMA gives nothing under 8 minutes.

use claimledger_billing::units::{TimedMinutes, UnitAllocation, allocate_units, units_for_minutes};
use claimledger_billing::{Cents, TieBreak, UnitMethod};
use proptest::prelude::*;

/// Up to six distinct codes with 0..=130 minutes each.
fn visit_minutes() -> impl Strategy<Value = Vec<TimedMinutes<u32>>> {
    prop::collection::vec(0_u32..=130, 1..=6).prop_map(|minutes| {
        minutes
            .into_iter()
            .enumerate()
            .map(|(index, minutes)| TimedMinutes {
                code: 97100 + index as u32,
                minutes,
            })
            .collect()
    })
}

/// The inputs of a tie-break: an optional primary among the first six codes and random per-unit
/// amounts (owned, so that each test can lend them to a [`TieBreak`]).
fn tie_break() -> impl Strategy<Value = (Option<u32>, Vec<(u32, Cents)>)> {
    (
        prop::option::of(0_u32..6),
        prop::collection::vec(prop::option::of(0_i64..5000), 6),
    )
        .prop_map(|(primary, amounts)| {
            let amounts = amounts
                .into_iter()
                .enumerate()
                .filter_map(|(index, amount)| {
                    amount.map(|cents| (97100 + index as u32, Cents(cents)))
                })
                .collect();
            (primary.map(|index| 97100 + index), amounts)
        })
}

fn lend(inputs: &(Option<u32>, Vec<(u32, Cents)>)) -> TieBreak<'_, u32> {
    TieBreak {
        primary: inputs.0,
        expected_allowed_per_unit: &inputs.1,
    }
}

fn method() -> impl Strategy<Value = UnitMethod> {
    prop_oneof![Just(UnitMethod::CmsTotalTime), Just(UnitMethod::AmaPerCode)]
}

fn run(
    method: UnitMethod,
    minutes: &[TimedMinutes<u32>],
    tie_break: &TieBreak<u32>,
) -> UnitAllocation<u32> {
    allocate_units(method, minutes, tie_break).expect("distinct codes")
}

proptest! {
    #[test]
    fn given_any_visit_when_cms_then_the_total_is_exactly_what_the_total_minutes_allow(minutes in visit_minutes(), tie_break in tie_break()) {
        let allocation = run(UnitMethod::CmsTotalTime, &minutes, &lend(&tie_break));
        let total: u32 = minutes.iter().map(|entry| entry.minutes).sum();
        prop_assert_eq!(allocation.total_units, units_for_minutes(total));
    }

    #[test]
    fn given_any_visit_when_ama_then_no_code_exceeds_what_its_own_minutes_allow(minutes in visit_minutes()) {
        let allocation = run(UnitMethod::AmaPerCode, &minutes, &TieBreak::default());
        for entry in &allocation.codes {
            prop_assert_eq!(entry.units, units_for_minutes(entry.minutes));
        }
    }

    #[test]
    fn given_any_visit_when_allocated_then_per_code_units_sum_to_the_total(method in method(), minutes in visit_minutes(), tie_break in tie_break()) {
        let allocation = run(method, &minutes, &lend(&tie_break));
        prop_assert_eq!(allocation.codes.iter().map(|entry| entry.units).sum::<u32>(), allocation.total_units);
        for entry in &allocation.codes {
            let (low, high) = entry.allowed_units;
            prop_assert!(low <= entry.units && entry.units <= high, "{} outside {}..={}", entry.units, low, high);
        }
    }

    #[test]
    fn given_any_visit_when_cms_then_every_full_15_minutes_of_a_code_is_at_least_one_unit(minutes in visit_minutes(), tie_break in tie_break()) {
        let allocation = run(UnitMethod::CmsTotalTime, &minutes, &lend(&tie_break));
        for entry in &allocation.codes {
            prop_assert!(entry.units >= entry.minutes / 15, "rule 2: {} min got {} units", entry.minutes, entry.units);
            prop_assert!(entry.units <= entry.minutes / 15 + 1);
        }
    }

    #[test]
    fn given_one_code_gets_more_minutes_when_allocated_then_neither_its_units_nor_the_total_drop(
        method in method(),
        minutes in visit_minutes(),
        tie_break in tie_break(),
        which in 0_usize..6,
        extra in 1_u32..40,
    ) {
        let which = which % minutes.len();
        let before = run(method, &minutes, &lend(&tie_break));
        let mut longer = minutes.clone();
        longer[which].minutes += extra;
        let after = run(method, &longer, &lend(&tie_break));
        let code = minutes[which].code;
        prop_assert!(after.total_units >= before.total_units);
        prop_assert!(after.units_of(code) >= before.units_of(code), "{} went from {} to {} units", code, before.units_of(code), after.units_of(code));
    }

    #[test]
    fn given_a_code_under_8_minutes_when_ama_then_it_gets_0_units(minutes in visit_minutes()) {
        let allocation = run(UnitMethod::AmaPerCode, &minutes, &TieBreak::default());
        for entry in allocation.codes.iter().filter(|entry| entry.minutes < 8) {
            prop_assert_eq!(entry.units, 0);
        }
    }
}
