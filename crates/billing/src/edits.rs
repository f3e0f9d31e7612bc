//! Correct-coding reference data: NCCI procedure-to-procedure (PTP) pairs, medically unlikely
//! edits (MUE) and the "always therapy" list, each dated, as data (decision 4).
//!
//! The crate never loads files: [`ReferenceData`] is an input. [`ReferenceData::example`] is built
//! from domain.md's tables for tests and demos; a chain replaces it with CMS's quarterly files.

use chrono::NaiveDate;

use crate::codes::CptCode;

/// How sure domain.md is of a reference row ([V], [S] or [U]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confidence {
    /// Checked against a primary source or a quote of it.
    Verified,
    /// Secondary sources only; probably right, replace with the CMS file when loaded.
    Secondary,
    /// Unverified; kept so the behaviour is visible, to be confirmed.
    Unverified,
}

/// The NCCI modifier indicator of a PTP pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModifierIndicator {
    /// 0: no modifier bypasses the edit; only the column 1 code is payable.
    NotAllowed,
    /// 1: a 59 or X{EPSU} modifier on the column 2 code bypasses the edit when documentation
    /// supports a distinct service.
    Allowed,
    /// 9: the edit does not apply (deleted).
    NotApplicable,
}

impl ModifierIndicator {
    /// The indicator digit as CMS prints it.
    pub const fn digit(self) -> u8 {
        match self {
            ModifierIndicator::NotAllowed => 0,
            ModifierIndicator::Allowed => 1,
            ModifierIndicator::NotApplicable => 9,
        }
    }
}

/// The dates a reference row is in force: from `effective` (inclusive) until `deleted`
/// (exclusive), or open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EffectivePeriod {
    /// First date of service the row applies to.
    pub effective: NaiveDate,
    /// First date of service the row no longer applies to, if it was deleted.
    pub deleted: Option<NaiveDate>,
}

impl EffectivePeriod {
    /// A period that starts on `effective` and has not ended.
    pub const fn from(effective: NaiveDate) -> EffectivePeriod {
        EffectivePeriod {
            effective,
            deleted: None,
        }
    }

    /// True when `date_of_service` falls inside the period.
    pub fn contains(&self, date_of_service: NaiveDate) -> bool {
        date_of_service >= self.effective
            && self.deleted.is_none_or(|deleted| date_of_service < deleted)
    }
}

/// One NCCI procedure-to-procedure pair: when both codes are billed for the same patient on the
/// same date, only `column1` is payable unless the indicator allows a modifier on `column2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PtpEdit {
    /// The payable (comprehensive) code.
    pub column1: CptCode,
    /// The code that is denied unless a distinct-procedure modifier is allowed and present.
    pub column2: CptCode,
    /// Whether a modifier can bypass the edit.
    pub indicator: ModifierIndicator,
    /// When the pair is in force.
    pub period: EffectivePeriod,
    /// How sure the source is.
    pub confidence: Confidence,
}

/// The MUE: the most units of `code` a payer accepts for one patient on one date of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MueLimit {
    /// The code the cap applies to.
    pub code: CptCode,
    /// The largest number of units per date of service.
    pub max_units: u32,
    /// When the cap is in force.
    pub period: EffectivePeriod,
    /// How sure the source is.
    pub confidence: Confidence,
}

/// One code on the "always therapy" list: it must carry a discipline modifier (GP/GO/GN) on
/// payers that require one, whoever performs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlwaysTherapyEntry {
    /// The code.
    pub code: CptCode,
    /// When the listing is in force.
    pub period: EffectivePeriod,
    /// How sure the source is.
    pub confidence: Confidence,
}

/// The correct-coding tables a claim is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferenceData {
    /// NCCI PTP pairs among the catalogue's codes.
    pub ptp_edits: Vec<PtpEdit>,
    /// MUE caps per code per date of service.
    pub mue_limits: Vec<MueLimit>,
    /// The always-therapy list.
    pub always_therapy: Vec<AlwaysTherapyEntry>,
}

/// The first date of service the example tables claim to cover. domain.md dates only the
/// evaluation/97140 pair (January 2020); the other rows carry no date in the sources, so the
/// example uses the same start for all of them rather than inventing different ones.
fn example_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(NaiveDate::MIN)
}

impl ReferenceData {
    /// The example tables from domain.md (sections 3, 4.2 and 4.3), for tests and demos.
    ///
    /// - PTP: 97140/97124 indicator 1 [S] (decision 4: the seeds' pairing, direction unconfirmed),
    ///   97140/97530 indicator 1 [S], 97012/97140 indicator 1 [S], 97161-97163/97140 indicator 1 [V].
    /// - MUE: 97110 = 6, 97112 = 4, 97530 = 6, 97012 = 1, 97750 = 8 (all [S]); 97124, 97140 and 97010
    ///   have no value in domain.md, so they are left uncapped until the CMS file is loaded.
    /// - Always therapy: 97140 and 97750 [S]; 97110, 97112, 97124, 97530 and the evaluations [U].
    ///   97010, 97012 and 97139 are left off: domain.md says to check them against the CMS list.
    pub fn example() -> ReferenceData {
        let period = EffectivePeriod::from(example_start());
        let pair = |column1, column2, confidence| PtpEdit {
            column1,
            column2,
            indicator: ModifierIndicator::Allowed,
            period,
            confidence,
        };
        let mue = |code, max_units| MueLimit {
            code,
            max_units,
            period,
            confidence: Confidence::Secondary,
        };
        let always = |code, confidence| AlwaysTherapyEntry {
            code,
            period,
            confidence,
        };
        ReferenceData {
            ptp_edits: vec![
                pair(
                    CptCode::ManualTherapy,
                    CptCode::Massage,
                    Confidence::Secondary,
                ),
                pair(
                    CptCode::ManualTherapy,
                    CptCode::TherapeuticActivities,
                    Confidence::Secondary,
                ),
                pair(
                    CptCode::MechanicalTraction,
                    CptCode::ManualTherapy,
                    Confidence::Secondary,
                ),
                pair(
                    CptCode::EvaluationLowComplexity,
                    CptCode::ManualTherapy,
                    Confidence::Verified,
                ),
                pair(
                    CptCode::EvaluationModerateComplexity,
                    CptCode::ManualTherapy,
                    Confidence::Verified,
                ),
                pair(
                    CptCode::EvaluationHighComplexity,
                    CptCode::ManualTherapy,
                    Confidence::Verified,
                ),
            ],
            mue_limits: vec![
                mue(CptCode::TherapeuticExercise, 6),
                mue(CptCode::NeuromuscularReeducation, 4),
                mue(CptCode::TherapeuticActivities, 6),
                mue(CptCode::MechanicalTraction, 1),
                mue(CptCode::PhysicalPerformanceTest, 8),
            ],
            always_therapy: vec![
                always(CptCode::ManualTherapy, Confidence::Secondary),
                always(CptCode::PhysicalPerformanceTest, Confidence::Secondary),
                always(CptCode::TherapeuticExercise, Confidence::Unverified),
                always(CptCode::NeuromuscularReeducation, Confidence::Unverified),
                always(CptCode::Massage, Confidence::Unverified),
                always(CptCode::TherapeuticActivities, Confidence::Unverified),
                always(CptCode::EvaluationLowComplexity, Confidence::Unverified),
                always(
                    CptCode::EvaluationModerateComplexity,
                    Confidence::Unverified,
                ),
                always(CptCode::EvaluationHighComplexity, Confidence::Unverified),
            ],
        }
    }

    /// The PTP edit in force on `date_of_service` between `first` and `second`, in either
    /// column order. Pairs with indicator 9 are skipped because they do not apply.
    pub fn ptp_edit_between(
        &self,
        first: CptCode,
        second: CptCode,
        date_of_service: NaiveDate,
    ) -> Option<&PtpEdit> {
        self.ptp_edits.iter().find(|edit| {
            let same_pair = (edit.column1 == first && edit.column2 == second)
                || (edit.column1 == second && edit.column2 == first);
            same_pair
                && edit.indicator != ModifierIndicator::NotApplicable
                && edit.period.contains(date_of_service)
        })
    }

    /// The MUE cap for `code` on `date_of_service`, if the tables hold one. When two rows overlap
    /// (a data error), the lower cap wins because it is the one a payer would enforce.
    pub fn mue_for(&self, code: CptCode, date_of_service: NaiveDate) -> Option<u32> {
        self.mue_limits
            .iter()
            .filter(|limit| limit.code == code && limit.period.contains(date_of_service))
            .map(|limit| limit.max_units)
            .min()
    }

    /// True when `code` is on the always-therapy list on `date_of_service`.
    pub fn is_always_therapy(&self, code: CptCode, date_of_service: NaiveDate) -> bool {
        self.always_therapy
            .iter()
            .any(|entry| entry.code == code && entry.period.contains(date_of_service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    #[test]
    fn given_the_example_when_97124_and_97140_are_looked_up_then_97140_is_column_1_with_indicator_1_marked_secondary()
     {
        let data = ReferenceData::example();
        let edit = data
            .ptp_edit_between(CptCode::Massage, CptCode::ManualTherapy, date(2026, 3, 2))
            .unwrap();
        assert_eq!(
            (edit.column1, edit.column2),
            (CptCode::ManualTherapy, CptCode::Massage)
        );
        assert_eq!(edit.indicator.digit(), 1);
        assert_eq!(edit.confidence, Confidence::Secondary);
    }

    #[test]
    fn given_the_example_when_mues_are_looked_up_then_they_match_domain_4_3() {
        let data = ReferenceData::example();
        let on = date(2026, 3, 2);
        let caps: Vec<(CptCode, Option<u32>)> = CptCode::ALL
            .into_iter()
            .map(|code| (code, data.mue_for(code, on)))
            .filter(|(_, cap)| cap.is_some())
            .collect();
        assert_eq!(
            caps,
            [
                (CptCode::MechanicalTraction, Some(1)),
                (CptCode::TherapeuticExercise, Some(6)),
                (CptCode::NeuromuscularReeducation, Some(4)),
                (CptCode::TherapeuticActivities, Some(6)),
                (CptCode::PhysicalPerformanceTest, Some(8)),
            ]
        );
    }

    #[test]
    fn given_a_deleted_or_future_row_when_looked_up_then_it_does_not_apply() {
        let mut data = ReferenceData::example();
        data.ptp_edits[0].period.deleted = Some(date(2025, 1, 1));
        assert!(
            data.ptp_edit_between(CptCode::Massage, CptCode::ManualTherapy, date(2024, 12, 31))
                .is_some()
        );
        assert!(
            data.ptp_edit_between(CptCode::Massage, CptCode::ManualTherapy, date(2025, 1, 1))
                .is_none()
        );
        assert!(
            data.mue_for(CptCode::TherapeuticExercise, date(2019, 12, 31))
                .is_none()
        );
    }

    #[test]
    fn given_an_indicator_9_pair_when_looked_up_then_it_is_ignored() {
        let mut data = ReferenceData::example();
        data.ptp_edits[1].indicator = ModifierIndicator::NotApplicable;
        assert!(
            data.ptp_edit_between(
                CptCode::ManualTherapy,
                CptCode::TherapeuticActivities,
                date(2026, 1, 5)
            )
            .is_none()
        );
    }

    #[test]
    fn given_the_example_when_always_therapy_is_asked_then_97010_is_not_listed_and_97140_is() {
        let data = ReferenceData::example();
        assert!(data.is_always_therapy(CptCode::ManualTherapy, date(2026, 1, 5)));
        assert!(!data.is_always_therapy(CptCode::HotColdPacks, date(2026, 1, 5)));
    }
}
