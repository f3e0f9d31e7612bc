//! CPT/HCPCS modifiers a therapy claim line can carry (domain.md sections 4 and 5).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A two-character modifier printed after the code in item 24D (up to four per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Modifier {
    /// 59: distinct procedural service (separate session, procedure, site or injury).
    DistinctProcedural,
    /// XE: separate encounter (a more specific 59).
    SeparateEncounter,
    /// XS: separate organ or structure (a more specific 59).
    SeparateStructure,
    /// XP: separate practitioner (a more specific 59).
    SeparatePractitioner,
    /// XU: unusual non-overlapping service (a more specific 59).
    UnusualNonOverlapping,
    /// GP: delivered under an outpatient physical therapy plan of care.
    PhysicalTherapyPlan,
    /// GO: delivered under an outpatient occupational therapy plan of care.
    OccupationalTherapyPlan,
    /// GN: delivered under an outpatient speech-language pathology plan of care.
    SpeechLanguagePlan,
    /// KX: medical necessity attested above the yearly therapy threshold.
    ThresholdExceptionAttested,
    /// CQ: furnished in whole or in part by a physical therapist assistant.
    AssistantFurnished,
}

/// A modifier string that is not one this product knows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("modifier {0:?} is not one of 59, XE, XS, XP, XU, GP, GO, GN, KX, CQ")]
pub struct UnknownModifier(pub String);

impl Modifier {
    /// Every modifier this product knows.
    pub const ALL: [Modifier; 10] = [
        Modifier::DistinctProcedural,
        Modifier::SeparateEncounter,
        Modifier::SeparateStructure,
        Modifier::SeparatePractitioner,
        Modifier::UnusualNonOverlapping,
        Modifier::PhysicalTherapyPlan,
        Modifier::OccupationalTherapyPlan,
        Modifier::SpeechLanguagePlan,
        Modifier::ThresholdExceptionAttested,
        Modifier::AssistantFurnished,
    ];

    /// The two characters printed on the claim, e.g. `"59"` or `"GP"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Modifier::DistinctProcedural => "59",
            Modifier::SeparateEncounter => "XE",
            Modifier::SeparateStructure => "XS",
            Modifier::SeparatePractitioner => "XP",
            Modifier::UnusualNonOverlapping => "XU",
            Modifier::PhysicalTherapyPlan => "GP",
            Modifier::OccupationalTherapyPlan => "GO",
            Modifier::SpeechLanguagePlan => "GN",
            Modifier::ThresholdExceptionAttested => "KX",
            Modifier::AssistantFurnished => "CQ",
        }
    }

    /// True for the modifiers that bypass an NCCI procedure-to-procedure edit (59 and X{EPSU}).
    pub const fn is_ncci_distinct_procedure(self) -> bool {
        matches!(
            self,
            Modifier::DistinctProcedural
                | Modifier::SeparateEncounter
                | Modifier::SeparateStructure
                | Modifier::SeparatePractitioner
                | Modifier::UnusualNonOverlapping
        )
    }

    /// True for the discipline (plan-of-care) modifiers GP, GO and GN.
    pub const fn is_therapy_discipline(self) -> bool {
        matches!(
            self,
            Modifier::PhysicalTherapyPlan
                | Modifier::OccupationalTherapyPlan
                | Modifier::SpeechLanguagePlan
        )
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Modifier {
    type Err = UnknownModifier;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Modifier::ALL
            .into_iter()
            .find(|modifier| modifier.as_str() == value)
            .ok_or_else(|| UnknownModifier(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_modifier_when_printed_and_parsed_then_it_round_trips() {
        for modifier in Modifier::ALL {
            assert_eq!(modifier.as_str().parse::<Modifier>(), Ok(modifier));
        }
        assert_eq!(
            "59X".parse::<Modifier>(),
            Err(UnknownModifier("59X".to_owned()))
        );
    }

    #[test]
    fn given_the_ncci_modifiers_when_classified_then_only_59_and_x_bypass_edits() {
        let bypassing: Vec<&str> = Modifier::ALL
            .into_iter()
            .filter(|m| m.is_ncci_distinct_procedure())
            .map(Modifier::as_str)
            .collect();
        assert_eq!(bypassing, ["59", "XE", "XS", "XP", "XU"]);
    }
}
