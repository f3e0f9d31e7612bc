//! Why each line of a derived claim is what it is: the reasons a claim carries for its codes,
//! units and modifiers, and for what it left out.

use super::*;

/// Why a payer preference changed the code of massage/manual work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubstitutionCause {
    /// The payer wants one of 97124/97140 per visit and both were documented.
    OneCodePerVisit,
    /// The payer does not accept a documented code but accepts the other, which the visit's
    /// techniques also support.
    DocumentedCodeNotAccepted,
}

/// Why a line carries its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeReason {
    /// The clinician's code, supported by the documented techniques.
    AsDocumented {
        /// The techniques documented under the code.
        techniques: TechniqueSet,
    },
    /// Massage/manual work billed under the payer's choice among the codes the documentation
    /// supports (decision 8).
    PayerPreference {
        /// The codes the clinician recorded.
        documented: Vec<CptCode>,
        /// Every massage/manual code the visit's techniques support.
        supported: Vec<CptCode>,
        /// Why one code was needed.
        cause: SubstitutionCause,
        /// True when the payer named this code as its preference; false when it was chosen by
        /// documented minutes.
        payer_preferred: bool,
    },
    /// An untimed modality or evaluation, as documented.
    UntimedService,
}

/// Where the units came from before any cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitsBasis {
    /// A timed code under the payer's unit method.
    Timed(CodeUnits<CptCode>),
    /// An untimed code.
    Untimed(UntimedUnits),
}

/// A cap that lowered the units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitCapSource {
    /// The medically unlikely edit for the code on this date.
    Mue,
    /// The payer's own maximum per code per visit.
    PayerMaximum,
}

/// Why a line carries its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitsReason {
    /// The units the minutes earn.
    pub basis: UnitsBasis,
    /// A cap that lowered them, with the cap value.
    pub cap: Option<(UnitCapSource, u32)>,
}

/// Why a line carries a modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModifierReason {
    /// The payer requires its plan-of-care modifier on always-therapy codes.
    PlanOfCare {
        /// The modifier.
        modifier: Modifier,
    },
    /// The line is column 2 of an NCCI pair with indicator 1, and the documentation puts the two
    /// codes on different body regions, which supports a distinct-procedure modifier.
    DistinctBodyRegions {
        /// The modifier.
        modifier: Modifier,
        /// The column 1 code of the pair.
        column1: CptCode,
        /// Regions documented under this line's code, comma-separated.
        regions: String,
        /// Regions documented under the column 1 code, comma-separated.
        column1_regions: String,
    },
}

/// The reasons behind one line, in the same order as `Claim::lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineExplanation {
    /// The code.
    pub code: CptCode,
    /// Why this code.
    pub code_reason: CodeReason,
    /// Why these units.
    pub units_reason: UnitsReason,
    /// Why each modifier.
    pub modifier_reasons: Vec<ModifierReason>,
}

impl fmt::Display for LineExplanation {
    /// The reasons as sentences separated by "; ".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        match &self.code_reason {
            CodeReason::AsDocumented { techniques } => {
                write!(f, "{code} as documented (")?;
                for (index, technique) in techniques.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}{technique}")?;
                }
                write!(f, ")")?;
            }
            CodeReason::PayerPreference {
                documented,
                cause,
                payer_preferred,
                ..
            } => {
                let documented: Vec<&str> = documented.iter().map(|code| code.as_str()).collect();
                let cause = match cause {
                    SubstitutionCause::OneCodePerVisit => {
                        "the payer wants one massage/manual code per visit"
                    }
                    SubstitutionCause::DocumentedCodeNotAccepted => {
                        "the payer does not accept every documented code"
                    }
                };
                let choice = if *payer_preferred {
                    "the payer's preferred code"
                } else {
                    "the code with the most documented minutes"
                };
                write!(
                    f,
                    "{code} for work documented as {}: {cause}, and {code} is {choice} among those the techniques support",
                    documented.join(" and ")
                )?;
            }
            CodeReason::UntimedService => write!(f, "{code} as documented (untimed service)")?,
        }
        match self.units_reason.basis {
            UnitsBasis::Timed(units) => write!(f, "; {units}")?,
            UnitsBasis::Untimed(units) => write!(f, "; {units}")?,
        }
        if let Some((source, cap)) = self.units_reason.cap {
            let source = match source {
                UnitCapSource::Mue => "the MUE",
                UnitCapSource::PayerMaximum => "the payer's maximum per visit",
            };
            write!(f, "; capped at {cap} by {source}")?;
        }
        for reason in &self.modifier_reasons {
            match reason {
                ModifierReason::PlanOfCare { modifier } => {
                    write!(
                        f,
                        "; {modifier}: always-therapy code and the payer requires the plan-of-care modifier"
                    )?;
                }
                ModifierReason::DistinctBodyRegions {
                    modifier,
                    column1,
                    regions,
                    column1_regions,
                } => write!(
                    f,
                    "; {modifier}: NCCI pair with {column1} (indicator 1) and the documentation separates the regions ({regions} vs {column1_regions})"
                )?,
            }
        }
        Ok(())
    }
}

/// Why documented work has no line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmissionReason {
    /// The payer never pays the code separately (e.g. 97010, status B).
    Bundled,
    /// The minutes earned no unit under the payer's method.
    NoUnits(CodeUnits<CptCode>),
}

/// Documented work left off the claim, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmittedCode {
    /// The code.
    pub code: CptCode,
    /// Its documented minutes.
    pub minutes: u32,
    /// Why.
    pub reason: OmissionReason,
}
