//! The procedure-code catalogue ClaimLedger bills, the techniques a session records, and which
//! technique each code covers (domain.md section 3 and decision 8).
//!
//! Descriptions are short summaries in our own words: the CPT descriptors are the AMA's copyright.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::validation::{FieldError, Problem};

/// A CPT procedure code from this product's catalogue.
///
/// Ordering follows the numeric code, which is the last step of the tie-break in decision 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CptCode {
    /// 97010: hot or cold packs.
    HotColdPacks,
    /// 97012: mechanical traction.
    MechanicalTraction,
    /// 97110: therapeutic exercise.
    TherapeuticExercise,
    /// 97112: neuromuscular re-education.
    NeuromuscularReeducation,
    /// 97124: massage.
    Massage,
    /// 97139: unlisted therapeutic procedure; the claim must describe the service.
    UnlistedTherapeuticProcedure,
    /// 97140: manual therapy techniques.
    ManualTherapy,
    /// 97530: therapeutic (functional) activities.
    TherapeuticActivities,
    /// 97750: physical performance test or measurement.
    PhysicalPerformanceTest,
    /// 97161: physical therapy evaluation, low complexity.
    EvaluationLowComplexity,
    /// 97162: physical therapy evaluation, moderate complexity.
    EvaluationModerateComplexity,
    /// 97163: physical therapy evaluation, high complexity.
    EvaluationHighComplexity,
}

/// Whether a code is billed in 15-minute units or once per visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    /// Billed per 15 minutes of direct one-on-one time; its minutes join the timed pool.
    Timed,
    /// Billed as 1 unit whatever the time; its minutes never join the timed pool (decision 7).
    Untimed,
}

impl CptCode {
    /// Every code in the catalogue, in code-number order.
    pub const ALL: [CptCode; 12] = [
        CptCode::HotColdPacks,
        CptCode::MechanicalTraction,
        CptCode::TherapeuticExercise,
        CptCode::NeuromuscularReeducation,
        CptCode::Massage,
        CptCode::UnlistedTherapeuticProcedure,
        CptCode::ManualTherapy,
        CptCode::EvaluationLowComplexity,
        CptCode::EvaluationModerateComplexity,
        CptCode::EvaluationHighComplexity,
        CptCode::TherapeuticActivities,
        CptCode::PhysicalPerformanceTest,
    ];

    /// The five-digit code as printed in item 24D, e.g. `"97140"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CptCode::HotColdPacks => "97010",
            CptCode::MechanicalTraction => "97012",
            CptCode::TherapeuticExercise => "97110",
            CptCode::NeuromuscularReeducation => "97112",
            CptCode::Massage => "97124",
            CptCode::UnlistedTherapeuticProcedure => "97139",
            CptCode::ManualTherapy => "97140",
            CptCode::TherapeuticActivities => "97530",
            CptCode::PhysicalPerformanceTest => "97750",
            CptCode::EvaluationLowComplexity => "97161",
            CptCode::EvaluationModerateComplexity => "97162",
            CptCode::EvaluationHighComplexity => "97163",
        }
    }

    /// The code as a number, e.g. `97140`.
    pub const fn number(self) -> u32 {
        match self {
            CptCode::HotColdPacks => 97010,
            CptCode::MechanicalTraction => 97012,
            CptCode::TherapeuticExercise => 97110,
            CptCode::NeuromuscularReeducation => 97112,
            CptCode::Massage => 97124,
            CptCode::UnlistedTherapeuticProcedure => 97139,
            CptCode::ManualTherapy => 97140,
            CptCode::TherapeuticActivities => 97530,
            CptCode::PhysicalPerformanceTest => 97750,
            CptCode::EvaluationLowComplexity => 97161,
            CptCode::EvaluationModerateComplexity => 97162,
            CptCode::EvaluationHighComplexity => 97163,
        }
    }

    /// Timed (15-minute units) or untimed (1 unit per visit).
    ///
    /// 97139 has no time in its descriptor (domain.md section 3, [U]); decision 1 says the
    /// clinics bill it in 15-minute units, so it is timed here, and the scrubber insists on the
    /// written description a payer needs to review it.
    pub const fn timing(self) -> Timing {
        match self {
            CptCode::HotColdPacks
            | CptCode::MechanicalTraction
            | CptCode::EvaluationLowComplexity
            | CptCode::EvaluationModerateComplexity
            | CptCode::EvaluationHighComplexity => Timing::Untimed,
            CptCode::TherapeuticExercise
            | CptCode::NeuromuscularReeducation
            | CptCode::Massage
            | CptCode::UnlistedTherapeuticProcedure
            | CptCode::ManualTherapy
            | CptCode::TherapeuticActivities
            | CptCode::PhysicalPerformanceTest => Timing::Timed,
        }
    }

    /// True for codes billed in 15-minute units.
    pub const fn is_timed(self) -> bool {
        matches!(self.timing(), Timing::Timed)
    }

    /// A short description in our own words (not the AMA descriptor).
    pub const fn short_description(self) -> &'static str {
        match self {
            CptCode::HotColdPacks => "Hot or cold pack applied to one or more areas",
            CptCode::MechanicalTraction => "Traction delivered by a machine",
            CptCode::TherapeuticExercise => {
                "Exercise to build strength, endurance, range of motion or flexibility, per 15 min"
            }
            CptCode::NeuromuscularReeducation => {
                "Retraining of balance, coordination, posture and body awareness, per 15 min"
            }
            CptCode::Massage => "Massage with stroking, kneading or percussion, per 15 min",
            CptCode::UnlistedTherapeuticProcedure => {
                "Therapeutic procedure with no specific code; must be described"
            }
            CptCode::ManualTherapy => {
                "Hands-on mobilisation, manipulation, traction or lymphatic drainage, per 15 min"
            }
            CptCode::TherapeuticActivities => "Functional, task-based activities, per 15 min",
            CptCode::PhysicalPerformanceTest => {
                "Measured physical performance test with a written report, per 15 min"
            }
            CptCode::EvaluationLowComplexity => "Physical therapy evaluation of low complexity",
            CptCode::EvaluationModerateComplexity => {
                "Physical therapy evaluation of moderate complexity"
            }
            CptCode::EvaluationHighComplexity => "Physical therapy evaluation of high complexity",
        }
    }

    /// The documented techniques this code covers (decision 8). Untimed modalities, evaluations
    /// and the performance test cover no session technique: they are documented as services of
    /// their own, not as hands-on techniques.
    pub const fn covered_techniques(self) -> &'static [Technique] {
        match self {
            CptCode::Massage => &[
                Technique::Effleurage,
                Technique::Petrissage,
                Technique::Tapotement,
                Technique::SwedishMassage,
                Technique::DeepTissueMassage,
            ],
            CptCode::ManualTherapy => &[
                Technique::MyofascialRelease,
                Technique::SoftTissueMobilisation,
                Technique::JointMobilisation,
                Technique::ManualTraction,
                Technique::ManualLymphaticDrainage,
            ],
            CptCode::NeuromuscularReeducation => &[
                Technique::ProprioceptiveNeuromuscularFacilitation,
                Technique::BalanceAndProprioception,
            ],
            CptCode::TherapeuticExercise => &[
                Technique::StrengthExercise,
                Technique::EnduranceExercise,
                Technique::RangeOfMotionExercise,
                Technique::FlexibilityExercise,
            ],
            CptCode::TherapeuticActivities => &[Technique::FunctionalActivities],
            CptCode::UnlistedTherapeuticProcedure => {
                &[Technique::Cupping, Technique::OtherUnlisted]
            }
            CptCode::HotColdPacks
            | CptCode::MechanicalTraction
            | CptCode::PhysicalPerformanceTest
            | CptCode::EvaluationLowComplexity
            | CptCode::EvaluationModerateComplexity
            | CptCode::EvaluationHighComplexity => &[],
        }
    }

    /// True when the documented `technique` supports billing this code.
    pub fn covers(self, technique: Technique) -> bool {
        self.covered_techniques().contains(&technique)
    }

    /// True when the claim must carry a written description of the service (97139).
    pub const fn requires_description(self) -> bool {
        matches!(self, CptCode::UnlistedTherapeuticProcedure)
    }

    /// True for the two codes clinics treat as interchangeable for massage work (97124, 97140).
    pub const fn is_massage_or_manual(self) -> bool {
        matches!(self, CptCode::Massage | CptCode::ManualTherapy)
    }

    /// Parses `value` as the content of `field`, e.g. `CptCode::parse("services[0].code", "97140")`.
    pub fn parse(field: &str, value: &str) -> Result<CptCode, FieldError> {
        CptCode::ALL
            .into_iter()
            .find(|code| code.as_str() == value)
            .ok_or_else(|| FieldError::new(field, value, Problem::UnknownProcedureCode))
    }

    /// The catalogue as a comma-separated list, for error messages.
    pub(crate) fn known_list() -> String {
        CptCode::ALL.map(CptCode::as_str).join(", ")
    }
}

impl PartialOrd for CptCode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CptCode {
    fn cmp(&self, other: &Self) -> Ordering {
        self.number().cmp(&other.number())
    }
}

impl fmt::Display for CptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CptCode {
    type Err = FieldError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        CptCode::parse("procedure code", value)
    }
}

/// A technique the clinician records for a service (decision 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Technique {
    /// Long gliding strokes.
    Effleurage,
    /// Kneading and compression.
    Petrissage,
    /// Rhythmic percussion.
    Tapotement,
    /// Swedish massage (a combination of the strokes above).
    SwedishMassage,
    /// Deep tissue massage.
    DeepTissueMassage,
    /// Sustained pressure to release fascial restrictions.
    MyofascialRelease,
    /// Targeted mobilisation of soft tissue.
    SoftTissueMobilisation,
    /// Passive movement of a joint within or at its range.
    JointMobilisation,
    /// Traction applied by the clinician's hands.
    ManualTraction,
    /// Light rhythmic work to move lymph.
    ManualLymphaticDrainage,
    /// Proprioceptive neuromuscular facilitation.
    ProprioceptiveNeuromuscularFacilitation,
    /// Balance and proprioception training.
    BalanceAndProprioception,
    /// Strengthening exercise.
    StrengthExercise,
    /// Endurance exercise.
    EnduranceExercise,
    /// Range-of-motion exercise.
    RangeOfMotionExercise,
    /// Flexibility exercise.
    FlexibilityExercise,
    /// Functional, task-based activities.
    FunctionalActivities,
    /// Cupping.
    Cupping,
    /// Any other work without a specific code; needs a written description.
    OtherUnlisted,
}

impl Technique {
    /// Every technique, in declaration order.
    pub const ALL: [Technique; 19] = [
        Technique::Effleurage,
        Technique::Petrissage,
        Technique::Tapotement,
        Technique::SwedishMassage,
        Technique::DeepTissueMassage,
        Technique::MyofascialRelease,
        Technique::SoftTissueMobilisation,
        Technique::JointMobilisation,
        Technique::ManualTraction,
        Technique::ManualLymphaticDrainage,
        Technique::ProprioceptiveNeuromuscularFacilitation,
        Technique::BalanceAndProprioception,
        Technique::StrengthExercise,
        Technique::EnduranceExercise,
        Technique::RangeOfMotionExercise,
        Technique::FlexibilityExercise,
        Technique::FunctionalActivities,
        Technique::Cupping,
        Technique::OtherUnlisted,
    ];

    /// The code that covers this technique. Decision 8 maps every technique to exactly one code;
    /// a test keeps that true.
    pub fn billing_code(self) -> CptCode {
        CptCode::ALL
            .into_iter()
            .find(|code| code.covers(self))
            .unwrap_or(CptCode::UnlistedTherapeuticProcedure)
    }

    /// A short human name, e.g. `"myofascial release"`.
    pub const fn name(self) -> &'static str {
        match self {
            Technique::Effleurage => "effleurage",
            Technique::Petrissage => "petrissage",
            Technique::Tapotement => "tapotement",
            Technique::SwedishMassage => "Swedish massage",
            Technique::DeepTissueMassage => "deep tissue massage",
            Technique::MyofascialRelease => "myofascial release",
            Technique::SoftTissueMobilisation => "soft-tissue mobilisation",
            Technique::JointMobilisation => "joint mobilisation",
            Technique::ManualTraction => "manual traction",
            Technique::ManualLymphaticDrainage => "manual lymphatic drainage",
            Technique::ProprioceptiveNeuromuscularFacilitation => "PNF",
            Technique::BalanceAndProprioception => "balance and proprioception work",
            Technique::StrengthExercise => "strength exercise",
            Technique::EnduranceExercise => "endurance exercise",
            Technique::RangeOfMotionExercise => "range-of-motion exercise",
            Technique::FlexibilityExercise => "flexibility exercise",
            Technique::FunctionalActivities => "functional activities",
            Technique::Cupping => "cupping",
            Technique::OtherUnlisted => "other unlisted technique",
        }
    }
}

/// A set of techniques, stored as bits so that it is `Copy` and never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TechniqueSet(u32);

impl TechniqueSet {
    /// Adds `technique`.
    pub fn insert(&mut self, technique: Technique) {
        self.0 |= 1 << technique as u32;
    }

    /// True when `technique` is in the set.
    pub fn contains(self, technique: Technique) -> bool {
        self.0 & (1 << technique as u32) != 0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The techniques in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Technique> {
        Technique::ALL
            .into_iter()
            .filter(move |technique| self.contains(*technique))
    }
}

impl FromIterator<Technique> for TechniqueSet {
    fn from_iter<I: IntoIterator<Item = Technique>>(techniques: I) -> Self {
        let mut set = TechniqueSet::default();
        for technique in techniques {
            set.insert(technique);
        }
        set
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_code_when_printed_and_parsed_then_it_round_trips() {
        for code in CptCode::ALL {
            assert_eq!(CptCode::parse("code", code.as_str()), Ok(code));
            assert_eq!(code.as_str().parse::<u32>(), Ok(code.number()));
        }
    }

    #[test]
    fn given_the_catalogue_when_sorted_then_order_is_numeric() {
        let mut sorted = CptCode::ALL;
        sorted.sort();
        assert_eq!(sorted, CptCode::ALL);
        assert!(
            CptCode::ALL
                .windows(2)
                .all(|pair| pair[0].number() < pair[1].number())
        );
    }

    #[test]
    fn given_an_unknown_code_when_parsed_then_the_error_names_the_field() {
        let error = CptCode::parse("services[1].code", "97116").unwrap_err();
        assert_eq!(error.field, "services[1].code");
        assert_eq!(error.problem, Problem::UnknownProcedureCode);
        assert!(error.to_string().contains("known: 97010, 97012"), "{error}");
    }

    #[test]
    fn given_decision_7_when_timing_is_asked_then_only_modalities_and_evaluations_are_untimed() {
        let untimed: Vec<&str> = CptCode::ALL
            .into_iter()
            .filter(|code| !code.is_timed())
            .map(CptCode::as_str)
            .collect();
        assert_eq!(untimed, ["97010", "97012", "97161", "97162", "97163"]);
    }

    #[test]
    fn given_decision_8_when_each_technique_is_looked_up_then_exactly_one_code_covers_it() {
        for technique in Technique::ALL {
            let covering: Vec<CptCode> = CptCode::ALL
                .into_iter()
                .filter(|code| code.covers(technique))
                .collect();
            assert_eq!(covering.len(), 1, "{technique} is covered by {covering:?}");
            assert_eq!(technique.billing_code(), covering[0]);
        }
    }

    #[test]
    fn given_decision_8_when_massage_and_manual_techniques_are_mapped_then_they_match_the_table() {
        assert_eq!(Technique::SwedishMassage.billing_code(), CptCode::Massage);
        assert_eq!(
            Technique::DeepTissueMassage.billing_code(),
            CptCode::Massage
        );
        assert_eq!(
            Technique::JointMobilisation.billing_code(),
            CptCode::ManualTherapy
        );
        assert_eq!(
            Technique::ManualLymphaticDrainage.billing_code(),
            CptCode::ManualTherapy
        );
        assert_eq!(
            Technique::ProprioceptiveNeuromuscularFacilitation.billing_code(),
            CptCode::NeuromuscularReeducation
        );
        assert_eq!(
            Technique::RangeOfMotionExercise.billing_code(),
            CptCode::TherapeuticExercise
        );
        assert_eq!(
            Technique::FunctionalActivities.billing_code(),
            CptCode::TherapeuticActivities
        );
        assert_eq!(
            Technique::Cupping.billing_code(),
            CptCode::UnlistedTherapeuticProcedure
        );
    }

    #[test]
    fn given_a_technique_set_when_filled_then_it_lists_members_in_declaration_order() {
        let set: TechniqueSet = [
            Technique::Cupping,
            Technique::Effleurage,
            Technique::Cupping,
        ]
        .into_iter()
        .collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Technique::Effleurage, Technique::Cupping]
        );
        assert!(!set.contains(Technique::Petrissage) && !set.is_empty());
        assert!(TechniqueSet::default().is_empty());
        assert_eq!(
            Technique::ALL
                .into_iter()
                .collect::<TechniqueSet>()
                .iter()
                .count(),
            Technique::ALL.len()
        );
    }

    #[test]
    fn given_97139_when_asked_then_only_it_requires_a_description() {
        let needing: Vec<CptCode> = CptCode::ALL
            .into_iter()
            .filter(|code| code.requires_description())
            .collect();
        assert_eq!(needing, [CptCode::UnlistedTherapeuticProcedure]);
    }
}
