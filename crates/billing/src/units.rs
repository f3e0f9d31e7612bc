//! Timed units from per-code minutes: the CMS total-time method (the "8-minute rule", domain.md
//! 1.4 largest-remainder allocation) and the AMA per-code method (domain.md section 2).
//!
//! The functions are pure and generic over the code type so that the manual's examples, which use
//! codes outside this product's catalogue (97116, 97035), run unchanged. Untimed codes bill 1 unit
//! and their minutes never join the timed pool ([`visit_units`]).

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

use crate::codes::CptCode;
use crate::money::Cents;

/// How a payer counts timed units (decision 2). It is a payer setting; the engine never picks
/// whichever method bills more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitMethod {
    /// CMS total time: all timed minutes of the day decide the number of units, which are then
    /// distributed across codes (Medicare Claims Processing Manual ch. 5 section 20.2).
    CmsTotalTime,
    /// AMA/CPT per code ("rule of eights"): each code's own minutes decide its units.
    AmaPerCode,
}

impl UnitMethod {
    /// A short name for tables and messages.
    pub const fn name(self) -> &'static str {
        match self {
            UnitMethod::CmsTotalTime => "CMS total time",
            UnitMethod::AmaPerCode => "AMA per code",
        }
    }
}

impl fmt::Display for UnitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The units a number of timed minutes allows (domain.md 1.1): 0 for 0-7 minutes, 1 for 8-22,
/// 2 for 23-37 and so on, i.e. `floor((minutes + 7) / 15)`.
pub const fn units_for_minutes(minutes: u32) -> u32 {
    // Computed in u64 so that u32::MAX minutes cannot overflow; the quotient always fits in u32.
    ((minutes as u64 + 7) / 15) as u32
}

/// The minutes of one timed code on one date of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedMinutes<C> {
    /// The code.
    pub code: C,
    /// Direct one-on-one minutes documented for it that day.
    pub minutes: u32,
}

/// The inputs of the decision 3 tie-break, used when leftover minutes tie for the last unit:
/// the clinician's primary code first, then the higher expected allowed amount per unit for the
/// payer, then the lower code number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TieBreak<'a, C> {
    /// The code the clinician marked as primary for the visit, if any.
    pub primary: Option<C>,
    /// The payer's expected allowed amount per unit; codes not listed rank below listed ones.
    pub expected_allowed_per_unit: &'a [(C, Cents)],
}

impl<C> Default for TieBreak<'_, C> {
    fn default() -> Self {
        TieBreak {
            primary: None,
            expected_allowed_per_unit: &[],
        }
    }
}

impl<C: Copy + PartialEq> TieBreak<'_, C> {
    fn allowed(&self, code: C) -> Option<Cents> {
        self.expected_allowed_per_unit
            .iter()
            .find(|(listed, _)| *listed == code)
            .map(|(_, amount)| *amount)
    }
}

/// Which step of the decision 3 policy settled a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TieBreakRule {
    /// The clinician marked one of the tied codes as primary.
    ClinicianPrimary,
    /// The payer's expected allowed amount per unit differed.
    HigherExpectedAllowed,
    /// Nothing else differed, so the lower code number won.
    LowerCodeNumber,
}

impl TieBreakRule {
    fn describe(self) -> &'static str {
        match self {
            TieBreakRule::ClinicianPrimary => "the clinician's primary code",
            TieBreakRule::HigherExpectedAllowed => "the higher expected allowed amount per unit",
            TieBreakRule::LowerCodeNumber => "the lower code number",
        }
    }
}

/// A tie among leftover minutes for the last unit(s), and how it was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieResolution<C> {
    /// Every code whose leftover minutes tied at the boundary, in code order.
    pub tied_codes: Vec<C>,
    /// The leftover minutes they tied on.
    pub leftover_minutes: u32,
    /// The tied codes that received an extra unit.
    pub winners: Vec<C>,
    /// The policy step that decided.
    pub rule: TieBreakRule,
}

/// What happened to a code's leftover minutes (those beyond its full 15-minute blocks) under the
/// CMS method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeftoverOutcome {
    /// No leftover minutes.
    NoLeftover,
    /// The leftover ranked `rank` (1 = largest) and earned one of the `units_available` extra units.
    EarnedUnit {
        /// 1-based rank among all codes' leftovers.
        rank: u32,
        /// Extra units the day's total left after full blocks.
        units_available: u32,
    },
    /// The leftover ranked `rank` but the `units_available` extra units went to larger (or
    /// tie-break-preferred) leftovers.
    NoUnit {
        /// 1-based rank among all codes' leftovers.
        rank: u32,
        /// Extra units the day's total left after full blocks.
        units_available: u32,
    },
}

/// Why a code received its units: structured, with a sentence from `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitReason {
    /// CMS total time: full 15-minute blocks plus, possibly, one unit for the leftover.
    TotalTime {
        /// Full 15-minute blocks in the code's minutes (each is a unit; rule 2).
        full_blocks: u32,
        /// Minutes beyond the full blocks.
        leftover_minutes: u32,
        /// Whether the leftover earned a unit.
        leftover: LeftoverOutcome,
    },
    /// AMA per code: the code's own minutes through the 8/23/38 table.
    PerCode {
        /// The code's minutes.
        minutes: u32,
    },
}

/// The units of one code and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeUnits<C> {
    /// The code.
    pub code: C,
    /// Its documented timed minutes.
    pub minutes: u32,
    /// Units billed (0 means documented but not billed).
    pub units: u32,
    /// The fewest and most units this code may carry under any assignment the method allows
    /// (they differ only where the CMS manual lets the provider choose between tied codes).
    pub allowed_units: (u32, u32),
    /// Why.
    pub reason: UnitReason,
}

impl<C: fmt::Display> fmt::Display for CodeUnits<C> {
    /// One human sentence explaining the units.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, minutes, units) = (&self.code, self.minutes, self.units);
        let plural = |count: u32| if count == 1 { "" } else { "s" };
        match self.reason {
            UnitReason::PerCode { .. } if units == 0 => {
                write!(
                    f,
                    "{code}: {minutes} min is under the 8-minute midpoint of a unit, so 0 units (AMA per code)"
                )
            }
            UnitReason::PerCode { .. } => {
                write!(
                    f,
                    "{code}: {minutes} min on its own gives {units} unit{} (8-22 = 1, 23-37 = 2, ...; AMA per code)",
                    plural(units)
                )
            }
            UnitReason::TotalTime {
                full_blocks,
                leftover_minutes,
                leftover,
            } => {
                write!(
                    f,
                    "{code}: {minutes} min = {full_blocks} full 15-min block{}",
                    plural(full_blocks)
                )?;
                match leftover {
                    LeftoverOutcome::NoLeftover => {}
                    LeftoverOutcome::EarnedUnit {
                        rank,
                        units_available,
                    } => write!(
                        f,
                        " + {leftover_minutes} leftover min, which ranked #{rank} for the {units_available} unit{} left after full blocks and earned one",
                        plural(units_available)
                    )?,
                    LeftoverOutcome::NoUnit {
                        rank,
                        units_available: 0,
                    } => write!(
                        f,
                        " + {leftover_minutes} leftover min (ranked #{rank}); the day's total left no unit for leftovers"
                    )?,
                    LeftoverOutcome::NoUnit {
                        rank,
                        units_available,
                    } => write!(
                        f,
                        " + {leftover_minutes} leftover min, which ranked #{rank}, behind the {units_available} leftover{} that earned the remaining unit{}",
                        plural(units_available),
                        plural(units_available)
                    )?,
                }
                write!(f, ", so {units} unit{} (CMS total time)", plural(units))
            }
        }
    }
}

/// The units of every timed code of one visit under one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitAllocation<C> {
    /// The method used.
    pub method: UnitMethod,
    /// Sum of all timed minutes.
    pub total_timed_minutes: u32,
    /// Sum of the units over all codes.
    pub total_units: u32,
    /// Per code, in code order.
    pub codes: Vec<CodeUnits<C>>,
    /// How a tie for the last unit(s) was settled, if there was one (CMS only).
    pub tie: Option<TieResolution<C>>,
}

impl<C: Copy + PartialEq> UnitAllocation<C> {
    /// The units of `code`, or 0 when it is not in the allocation.
    pub fn units_of(&self, code: C) -> u32 {
        self.codes
            .iter()
            .find(|entry| entry.code == code)
            .map_or(0, |entry| entry.units)
    }
}

impl<C: fmt::Display> UnitAllocation<C> {
    /// One sentence about the total.
    pub fn summary(&self) -> String {
        let plural = if self.total_units == 1 { "" } else { "s" };
        let mut text = match self.method {
            UnitMethod::CmsTotalTime => {
                let full_blocks: u32 = self
                    .codes
                    .iter()
                    .map(|entry| match entry.reason {
                        UnitReason::TotalTime { full_blocks, .. } => full_blocks,
                        UnitReason::PerCode { .. } => 0,
                    })
                    .sum();
                format!(
                    "CMS total time: {} timed min allow {} unit{plural} in total (8-22 = 1, 23-37 = 2, ...); {} go to full 15-min blocks and {} to the largest leftovers",
                    self.total_timed_minutes,
                    self.total_units,
                    full_blocks,
                    self.total_units.saturating_sub(full_blocks)
                )
            }
            UnitMethod::AmaPerCode => format!(
                "AMA per code: each code's own minutes decide its units; {} timed min give {} unit{plural} in total",
                self.total_timed_minutes, self.total_units
            ),
        };
        if let Some(tie) = &self.tie {
            let tied: Vec<String> = tie.tied_codes.iter().map(ToString::to_string).collect();
            let winners: Vec<String> = tie.winners.iter().map(ToString::to_string).collect();
            text.push_str(&format!(
                ". Tie: {} each had {} leftover min; {} got the unit by {} (decision 3), and the manual allows either choice",
                tied.join(", "),
                tie.leftover_minutes,
                winners.join(", "),
                tie.rule.describe()
            ));
        }
        text
    }
}

/// Input the unit functions refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitsError {
    /// The same code appears twice; one date of service has one line per code (decision 5), so
    /// the caller must add the minutes up first.
    #[error("minutes[{code}]: code {code} is given more than once; add its minutes into one entry")]
    DuplicateCode {
        /// The repeated code.
        code: String,
    },
    /// The minutes of the day add up to more than `u32::MAX`.
    #[error("minutes: the total timed minutes overflow")]
    TotalOverflow,
}

/// Allocates units to timed codes with `method`. The result lists codes in code order.
pub fn allocate_units<C: Copy + Ord + fmt::Display>(
    method: UnitMethod,
    timed: &[TimedMinutes<C>],
    tie_break: &TieBreak<'_, C>,
) -> Result<UnitAllocation<C>, UnitsError> {
    allocate_owned(method, timed.to_vec(), tie_break)
}

/// [`allocate_units`] on a vector the caller no longer needs, which saves a copy.
fn allocate_owned<C: Copy + Ord + fmt::Display>(
    method: UnitMethod,
    mut sorted: Vec<TimedMinutes<C>>,
    tie_break: &TieBreak<'_, C>,
) -> Result<UnitAllocation<C>, UnitsError> {
    sorted.sort_by_key(|entry| entry.code);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].code == pair[1].code) {
        return Err(UnitsError::DuplicateCode {
            code: pair[0].code.to_string(),
        });
    }
    let total_timed_minutes = sorted
        .iter()
        .try_fold(0_u32, |total, entry| total.checked_add(entry.minutes))
        .ok_or(UnitsError::TotalOverflow)?;
    Ok(match method {
        UnitMethod::CmsTotalTime => allocate_total_time(&sorted, total_timed_minutes, tie_break),
        UnitMethod::AmaPerCode => allocate_per_code(&sorted, total_timed_minutes),
    })
}

fn allocate_per_code<C: Copy>(
    sorted: &[TimedMinutes<C>],
    total_timed_minutes: u32,
) -> UnitAllocation<C> {
    let codes: Vec<CodeUnits<C>> = sorted
        .iter()
        .map(|entry| {
            let units = units_for_minutes(entry.minutes);
            CodeUnits {
                code: entry.code,
                minutes: entry.minutes,
                units,
                allowed_units: (units, units),
                reason: UnitReason::PerCode {
                    minutes: entry.minutes,
                },
            }
        })
        .collect();
    UnitAllocation {
        method: UnitMethod::AmaPerCode,
        total_timed_minutes,
        total_units: codes.iter().map(|entry| entry.units).sum(),
        codes,
        tie: None,
    }
}

/// Domain.md 1.4: total units from the total minutes, one unit per full 15-minute block of each
/// code, and the units left over to the codes with the largest leftover minutes, one each.
fn allocate_total_time<C: Copy + Ord>(
    sorted: &[TimedMinutes<C>],
    total_timed_minutes: u32,
    tie_break: &TieBreak<'_, C>,
) -> UnitAllocation<C> {
    let total_units = units_for_minutes(total_timed_minutes);
    let full_blocks_total: u32 = sorted.iter().map(|entry| entry.minutes / 15).sum();
    // Always 0 <= extra <= number of codes with a leftover (domain.md 1.4), so each code gets at
    // most one extra unit; saturating_sub only guards the arithmetic.
    let extra_units = total_units.saturating_sub(full_blocks_total);

    // Candidates for the extra units: codes with leftover minutes, best first. The order is the
    // leftover size, then the decision 3 tie-break.
    let mut candidates: Vec<usize> = (0..sorted.len())
        .filter(|&index| !sorted[index].minutes.is_multiple_of(15))
        .collect();
    let rank_order = |left: &usize, right: &usize| -> Ordering {
        let (left, right) = (&sorted[*left], &sorted[*right]);
        (right.minutes % 15)
            .cmp(&(left.minutes % 15))
            .then_with(|| tie_break_order(left.code, right.code, tie_break))
    };
    candidates.sort_by(rank_order);
    let winners = &candidates[..(extra_units as usize).min(candidates.len())];

    let mut codes: Vec<CodeUnits<C>> = Vec::with_capacity(sorted.len());
    for (index, entry) in sorted.iter().enumerate() {
        let full_blocks = entry.minutes / 15;
        let leftover_minutes = entry.minutes % 15;
        let position = candidates.iter().position(|&candidate| candidate == index);
        let (leftover, extra) = match position {
            None => (LeftoverOutcome::NoLeftover, 0),
            Some(position) => {
                let rank = position as u32 + 1;
                if position < winners.len() {
                    (
                        LeftoverOutcome::EarnedUnit {
                            rank,
                            units_available: extra_units,
                        },
                        1,
                    )
                } else {
                    (
                        LeftoverOutcome::NoUnit {
                            rank,
                            units_available: extra_units,
                        },
                        0,
                    )
                }
            }
        };
        // The range of units any tie-break could give: a leftover strictly larger than the
        // boundary always wins, one equal to it may win or lose.
        let larger = candidates
            .iter()
            .filter(|&&other| sorted[other].minutes % 15 > leftover_minutes)
            .count() as u32;
        let at_least_as_large = candidates
            .iter()
            .filter(|&&other| sorted[other].minutes % 15 >= leftover_minutes)
            .count() as u32;
        let can_win = leftover_minutes > 0 && larger < extra_units;
        let must_win = leftover_minutes > 0 && at_least_as_large <= extra_units;
        codes.push(CodeUnits {
            code: entry.code,
            minutes: entry.minutes,
            units: full_blocks + extra,
            allowed_units: (
                full_blocks + u32::from(must_win),
                full_blocks + u32::from(can_win),
            ),
            reason: UnitReason::TotalTime {
                full_blocks,
                leftover_minutes,
                leftover,
            },
        });
    }

    let tie = find_tie(sorted, &candidates, winners.len(), tie_break);
    UnitAllocation {
        method: UnitMethod::CmsTotalTime,
        total_timed_minutes,
        total_units: codes.iter().map(|entry| entry.units).sum(),
        codes,
        tie,
    }
}

/// Orders two codes whose leftovers are equal: primary first, then higher allowed, then lower code.
fn tie_break_order<C: Copy + Ord>(left: C, right: C, tie_break: &TieBreak<'_, C>) -> Ordering {
    let is_primary = |code: C| tie_break.primary == Some(code);
    is_primary(right)
        .cmp(&is_primary(left))
        .then_with(|| tie_break.allowed(right).cmp(&tie_break.allowed(left)))
        .then_with(|| left.cmp(&right))
}

/// A tie exists when the last winner and the first loser have the same leftover minutes.
fn find_tie<C: Copy + Ord>(
    sorted: &[TimedMinutes<C>],
    candidates: &[usize],
    winner_count: usize,
    tie_break: &TieBreak<'_, C>,
) -> Option<TieResolution<C>> {
    if winner_count == 0 || winner_count >= candidates.len() {
        return None;
    }
    let (last_winner, first_loser) = (
        sorted[candidates[winner_count - 1]],
        sorted[candidates[winner_count]],
    );
    let boundary = last_winner.minutes % 15;
    if first_loser.minutes % 15 != boundary {
        return None;
    }
    let mut tied_codes: Vec<C> = candidates
        .iter()
        .map(|&index| sorted[index])
        .filter(|entry| entry.minutes % 15 == boundary)
        .map(|entry| entry.code)
        .collect();
    tied_codes.sort();
    let mut winners: Vec<C> = candidates[..winner_count]
        .iter()
        .map(|&index| sorted[index])
        .filter(|entry| entry.minutes % 15 == boundary)
        .map(|entry| entry.code)
        .collect();
    winners.sort();
    let (winner, loser) = (last_winner.code, first_loser.code);
    let rule = if (tie_break.primary == Some(winner)) != (tie_break.primary == Some(loser)) {
        TieBreakRule::ClinicianPrimary
    } else if tie_break.allowed(winner) != tie_break.allowed(loser) {
        TieBreakRule::HigherExpectedAllowed
    } else {
        TieBreakRule::LowerCodeNumber
    };
    Some(TieResolution {
        tied_codes,
        leftover_minutes: boundary,
        winners,
        rule,
    })
}

/// Minutes documented for a code on one visit, timed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeMinutes {
    /// The code.
    pub code: CptCode,
    /// Minutes documented for it.
    pub minutes: u32,
}

/// An untimed code on a visit: always 1 unit, whatever the minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntimedUnits {
    /// The code.
    pub code: CptCode,
    /// Minutes documented, which never join the timed pool (decision 7).
    pub minutes: u32,
}

impl fmt::Display for UntimedUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: untimed code, 1 unit whatever the time; its {} min do not join the timed pool",
            self.code, self.minutes
        )
    }
}

/// The units of a whole visit: the timed allocation plus the untimed codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitUnits {
    /// Timed codes under the payer's method.
    pub timed: UnitAllocation<CptCode>,
    /// Untimed codes, 1 unit each, in code order.
    pub untimed: Vec<UntimedUnits>,
}

impl VisitUnits {
    /// Timed plus untimed units.
    pub fn total_units(&self) -> u32 {
        self.timed.total_units + self.untimed.len() as u32
    }
}

/// Splits a visit's per-code minutes into timed and untimed codes and allocates the timed units.
pub fn visit_units(
    method: UnitMethod,
    minutes: &[CodeMinutes],
    tie_break: &TieBreak<'_, CptCode>,
) -> Result<VisitUnits, UnitsError> {
    let timed: Vec<TimedMinutes<CptCode>> = minutes
        .iter()
        .filter(|entry| entry.code.is_timed())
        .map(|entry| TimedMinutes {
            code: entry.code,
            minutes: entry.minutes,
        })
        .collect();
    let mut untimed: Vec<UntimedUnits> = minutes
        .iter()
        .filter(|entry| !entry.code.is_timed())
        .map(|entry| UntimedUnits {
            code: entry.code,
            minutes: entry.minutes,
        })
        .collect();
    untimed.sort_by_key(|entry| entry.code);
    if let Some(pair) = untimed.windows(2).find(|pair| pair[0].code == pair[1].code) {
        return Err(UnitsError::DuplicateCode {
            code: pair[0].code.to_string(),
        });
    }
    Ok(VisitUnits {
        timed: allocate_owned(method, timed, tie_break)?,
        untimed,
    })
}
