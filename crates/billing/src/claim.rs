//! Claim lines from a completed visit: which code, how many units, which modifiers, which
//! diagnoses and what charge, shaped like CMS-1500 item 24, each decision with its reason.

use std::fmt;

use chrono::NaiveDate;
use thiserror::Error;

use crate::codes::{CptCode, Technique, TechniqueSet};
use crate::edits::{ModifierIndicator, ReferenceData};
use crate::modifiers::Modifier;
use crate::money::{Cents, MoneyOverflow};
use crate::policy::{DistinctProcedureModifiers, PayerPolicy, PriceList};
use crate::units::{
    CodeMinutes, CodeUnits, TieBreak, UnitsError, UntimedUnits, VisitUnits, visit_units,
};
use crate::validation::{FieldError, Icd10Code, Npi, Problem, TaxId};

mod attribution;
mod explain;

pub use attribution::{Attribution, CodeDocumentation, Substitution, attribute};
pub use explain::*;

/// The most diagnoses item 21 holds (A to L).
pub const MAX_DIAGNOSES: usize = 12;
/// The most diagnosis pointers item 24E holds per line.
pub const MAX_POINTERS_PER_LINE: usize = 4;
/// The most modifiers item 24D holds per line.
pub const MAX_MODIFIERS_PER_LINE: usize = 4;

/// A place-of-service code (item 24B), e.g. 11 for an office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceOfService(pub u8);

impl PlaceOfService {
    /// 02: telehealth provided other than in the patient's home.
    pub const TELEHEALTH: PlaceOfService = PlaceOfService(2);
    /// 10: telehealth in the patient's home.
    pub const TELEHEALTH_IN_HOME: PlaceOfService = PlaceOfService(10);
    /// 11: office.
    pub const OFFICE: PlaceOfService = PlaceOfService(11);
    /// 12: the patient's home.
    pub const HOME: PlaceOfService = PlaceOfService(12);
}

impl fmt::Display for PlaceOfService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// One documented hands-on service of a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// The technique performed.
    pub technique: Technique,
    /// The code the clinician recorded for it.
    pub code: CptCode,
    /// Direct one-on-one minutes.
    pub minutes: u32,
    /// The body region treated, free text (compared case-insensitively).
    pub body_region: String,
    /// A written description of the service; required for 97139.
    pub description: Option<String>,
}

/// One documented untimed service: a supervised modality (97010, 97012) or an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntimedService {
    /// The code.
    pub code: CptCode,
    /// Minutes, kept for the record; they never join the timed pool (decision 7).
    pub minutes: u32,
    /// The body region, free text.
    pub body_region: String,
}

/// The referral or prescription the visit relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The date it was issued.
    pub issued: NaiveDate,
    /// The last date it covers.
    pub expires: NaiveDate,
    /// The diagnoses it names, as written.
    pub diagnoses: Vec<String>,
}

/// A completed visit as documented, the input of claim derivation.
///
/// Diagnoses are kept as written rather than as [`Icd10Code`]: a typo in a diagnosis does not
/// make the visit any less real, so it must reach the scrubber (which reports it) instead of
/// being refused and lost at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// Date of service, already resolved in the clinic's time zone by the caller.
    pub date_of_service: NaiveDate,
    /// Where the service was delivered.
    pub place_of_service: PlaceOfService,
    /// The clinic's (billing provider's) NPI.
    pub clinic_npi: Npi,
    /// The clinic's federal tax id.
    pub tax_id: TaxId,
    /// The rendering therapist's NPI.
    pub rendering_npi: Npi,
    /// Hands-on, timed services.
    pub services: Vec<ServiceRecord>,
    /// Untimed modalities and evaluations.
    pub modalities: Vec<UntimedService>,
    /// ICD-10-CM diagnoses as documented, primary first.
    pub diagnoses: Vec<String>,
    /// The code the clinician marked as primary, used to break unit ties (decision 3).
    pub primary_code: Option<CptCode>,
    /// The referral, if any.
    pub referral: Option<Referral>,
}

/// A diagnosis pointer (item 24E): an index into item 21, printed as a letter A to L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiagnosisPointer(pub u8);

impl DiagnosisPointer {
    /// The letter printed on the form; `?` for an index beyond L.
    pub fn letter(self) -> char {
        if usize::from(self.0) < MAX_DIAGNOSES {
            char::from(b'A' + self.0)
        } else {
            '?'
        }
    }
}

impl fmt::Display for DiagnosisPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// One service line, shaped like CMS-1500 item 24.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    /// 24A: date of service (from and to are the same day).
    pub date_of_service: NaiveDate,
    /// 24B: place of service.
    pub place_of_service: PlaceOfService,
    /// 24D: the procedure code.
    pub code: CptCode,
    /// 24D: up to four modifiers.
    pub modifiers: Vec<Modifier>,
    /// 24E: up to four pointers into the claim's diagnoses.
    pub diagnosis_pointers: Vec<DiagnosisPointer>,
    /// 24F: line charge (units times the charge master's price per unit).
    pub charge: Cents,
    /// 24G: units.
    pub units: u32,
    /// 24J: rendering provider NPI.
    pub rendering_npi: Npi,
}

/// The claim for one visit: the header fields this crate knows and the service lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Date of service.
    pub date_of_service: NaiveDate,
    /// Place of service.
    pub place_of_service: PlaceOfService,
    /// Item 33a: billing provider (clinic) NPI.
    pub billing_npi: Npi,
    /// Item 25: federal tax id.
    pub tax_id: TaxId,
    /// Item 21: diagnoses A to L.
    pub diagnoses: Vec<Icd10Code>,
    /// Item 24: one line per code (decision 5).
    pub lines: Vec<ClaimLine>,
    /// Item 28: total charge.
    pub total_charge: Cents,
}

/// The derived claim with every decision's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedClaim {
    /// The claim.
    pub claim: Claim,
    /// One explanation per line, in line order.
    pub explanations: Vec<LineExplanation>,
    /// Documented codes without a line.
    pub omitted: Vec<OmittedCode>,
    /// The unit computation, including any tie and how it was settled.
    pub units: VisitUnits,
    /// Diagnoses that could not go on the claim (invalid syntax or beyond L); the scrubber reports them.
    pub skipped_diagnoses: Vec<FieldError>,
}

/// A claim that cannot be derived at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeriveError {
    /// The charge master has no price for a billed code.
    #[error("charge_master[{code}]: no charge per unit for {code}")]
    MissingCharge {
        /// The code without a price.
        code: CptCode,
    },
    /// The minutes of one code overflow.
    #[error("services: the minutes documented for {code} overflow")]
    MinutesOverflow {
        /// The code.
        code: CptCode,
    },
    /// A charge overflowed.
    #[error(transparent)]
    Money(#[from] MoneyOverflow),
    /// The unit computation refused its input.
    #[error(transparent)]
    Units(#[from] UnitsError),
}

/// Derives the claim for `visit` under `policy`, checking edits from `reference` and pricing
/// from `charge_master`.
///
/// Decisions where domain.md is silent, as a careful biller would take them:
/// - Bundled codes are left off (the patient cannot be billed for them either) and their minutes
///   stay out of the timed pool, because bundled time cannot earn units for other codes.
/// - Units above the MUE (when the payer enforces NCCI) or the payer's per-visit maximum are cut
///   to the cap: a line above an MUE is denied whole.
/// - A distinct-procedure modifier is added only when the documented body regions of the two codes
///   do not overlap; otherwise the pair is left for the scrubber to report, never papered over.
/// - Every line points at the first four diagnoses: the visit does not link diagnoses to services.
pub fn derive_claim(
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    charge_master: &PriceList,
) -> Result<DerivedClaim, DeriveError> {
    let attribution = attribute(visit, policy)?;
    let date = visit.date_of_service;
    let mut omitted = Vec::new();
    let mut minutes: Vec<CodeMinutes> = Vec::with_capacity(attribution.codes.len());
    for documentation in &attribution.codes {
        let code = documentation.code;
        if policy.bundles(code) {
            omitted.push(OmittedCode {
                code,
                minutes: documentation.minutes,
                reason: OmissionReason::Bundled,
            });
        } else {
            minutes.push(CodeMinutes {
                code,
                minutes: documentation.minutes,
            });
        }
    }
    let tie_break = TieBreak {
        primary: visit
            .primary_code
            .map(|code| attribution.billed_code_for(code)),
        expected_allowed_per_unit: policy.fee_schedule.as_slice(),
    };
    let units = visit_units(policy.unit_method, &minutes, &tie_break)?;

    let mut planned: Vec<(CptCode, UnitsBasis)> = Vec::with_capacity(minutes.len());
    for entry in &units.timed.codes {
        if entry.units == 0 {
            omitted.push(OmittedCode {
                code: entry.code,
                minutes: entry.minutes,
                reason: OmissionReason::NoUnits(*entry),
            });
        } else {
            planned.push((entry.code, UnitsBasis::Timed(*entry)));
        }
    }
    planned.extend(
        units
            .untimed
            .iter()
            .map(|entry| (entry.code, UnitsBasis::Untimed(*entry))),
    );
    planned.sort_by_key(|(code, _)| *code);

    let (diagnoses, skipped_diagnoses) = claim_diagnoses(&visit.diagnoses);
    let pointer_count = diagnoses.len().min(MAX_POINTERS_PER_LINE) as u8;
    let mut lines = Vec::with_capacity(planned.len());
    let mut explanations = Vec::with_capacity(planned.len());
    for &(code, basis) in &planned {
        let earned = match basis {
            UnitsBasis::Timed(entry) => entry.units,
            UnitsBasis::Untimed(_) => 1,
        };
        let (billed_units, cap) = apply_caps(code, earned, date, policy, reference);
        let modifier_reasons =
            line_modifiers(code, &planned, &attribution, visit, policy, reference);
        let price = charge_master
            .per_unit(code)
            .ok_or(DeriveError::MissingCharge { code })?;
        let charge = price
            .checked_mul_units(billed_units)
            .ok_or_else(|| MoneyOverflow {
                field: format!("lines[{}].charge", lines.len()),
                operation: format!("{billed_units} units x {price}"),
            })?;
        lines.push(ClaimLine {
            date_of_service: date,
            place_of_service: visit.place_of_service,
            code,
            modifiers: modifier_reasons.iter().map(modifier_of).collect(),
            diagnosis_pointers: (0..pointer_count).map(DiagnosisPointer).collect(),
            charge,
            units: billed_units,
            rendering_npi: visit.rendering_npi,
        });
        explanations.push(LineExplanation {
            code,
            code_reason: code_reason(code, &attribution),
            units_reason: UnitsReason { basis, cap },
            modifier_reasons,
        });
    }
    let total_charge = Cents::sum(lines.iter().map(|line| line.charge), "total_charge")?;
    Ok(DerivedClaim {
        claim: Claim {
            date_of_service: date,
            place_of_service: visit.place_of_service,
            billing_npi: visit.clinic_npi,
            tax_id: visit.tax_id,
            diagnoses,
            lines,
            total_charge,
        },
        explanations,
        omitted,
        units,
        skipped_diagnoses,
    })
}

/// Valid, distinct diagnoses in documented order, at most twelve; the rest with the reason.
fn claim_diagnoses(documented: &[String]) -> (Vec<Icd10Code>, Vec<FieldError>) {
    let mut diagnoses: Vec<Icd10Code> = Vec::with_capacity(documented.len().min(MAX_DIAGNOSES));
    let mut skipped = Vec::new();
    for (index, text) in documented.iter().enumerate() {
        let field = || format!("diagnoses[{index}]");
        match Icd10Code::try_from_text(text) {
            Ok(code) if diagnoses.contains(&code) => {}
            Ok(code) if diagnoses.len() < MAX_DIAGNOSES => diagnoses.push(code),
            Ok(_) => skipped.push(FieldError::new(&field(), text, Problem::TooManyDiagnoses)),
            Err(problem) => skipped.push(FieldError::new(&field(), text, problem)),
        }
    }
    (diagnoses, skipped)
}

/// The lowest applicable cap, if it is below the earned units.
pub(crate) fn unit_cap(
    code: CptCode,
    date: NaiveDate,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> Option<(UnitCapSource, u32)> {
    let mue = policy
        .enforce_ncci_edits
        .then(|| reference.mue_for(code, date))
        .flatten()
        .map(|cap| (UnitCapSource::Mue, cap));
    let payer = policy
        .max_units_per_code_per_visit
        .map(|cap| (UnitCapSource::PayerMaximum, cap));
    [mue, payer]
        .into_iter()
        .flatten()
        .min_by_key(|(_, cap)| *cap)
}

fn apply_caps(
    code: CptCode,
    earned: u32,
    date: NaiveDate,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> (u32, Option<(UnitCapSource, u32)>) {
    match unit_cap(code, date, policy, reference) {
        Some((source, cap)) if cap < earned => (cap, Some((source, cap))),
        _ => (earned, None),
    }
}

fn modifier_of(reason: &ModifierReason) -> Modifier {
    match reason {
        ModifierReason::PlanOfCare { modifier }
        | ModifierReason::DistinctBodyRegions { modifier, .. } => *modifier,
    }
}

fn code_reason(code: CptCode, attribution: &Attribution) -> CodeReason {
    if !code.is_timed() {
        return CodeReason::UntimedService;
    }
    match &attribution.substitution {
        Some(substitution) if substitution.billed == code => CodeReason::PayerPreference {
            documented: substitution.documented.clone(),
            supported: substitution.supported.clone(),
            cause: substitution.cause,
            payer_preferred: substitution.payer_preferred,
        },
        _ => CodeReason::AsDocumented {
            techniques: attribution
                .get(code)
                .map(CodeDocumentation::techniques)
                .unwrap_or_default(),
        },
    }
}

/// The modifiers of one line: the plan-of-care modifier first (as in "97140 GP 59"), then a
/// distinct-procedure modifier when this line is column 2 of a bypassable pair on separate regions.
fn line_modifiers(
    code: CptCode,
    planned: &[(CptCode, UnitsBasis)],
    attribution: &Attribution,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> Vec<ModifierReason> {
    let date = visit.date_of_service;
    let mut reasons = Vec::new();
    if let Some(modifier) = policy.plan_of_care_modifier
        && reference.is_always_therapy(code, date)
    {
        reasons.push(ModifierReason::PlanOfCare { modifier });
    }
    let distinct_modifier = match policy.distinct_procedure_modifiers {
        DistinctProcedureModifiers::Use59 => Some(Modifier::DistinctProcedural),
        DistinctProcedureModifiers::UseXModifiers => Some(Modifier::SeparateStructure),
        DistinctProcedureModifiers::NotAccepted => None,
    };
    if let Some(modifier) = distinct_modifier.filter(|_| policy.enforce_ncci_edits) {
        for &(other, _) in planned.iter().filter(|(other, _)| *other != code) {
            let Some(edit) = reference.ptp_edit_between(code, other, date) else {
                continue;
            };
            if edit.column2 != code || edit.indicator != ModifierIndicator::Allowed {
                continue;
            }
            let documentation = attribution.get(code);
            let column1_documentation = attribution.get(other);
            if let (Some(documentation), Some(column1_documentation)) =
                (documentation, column1_documentation)
                && documentation.regions_disjoint(column1_documentation)
                && !reasons
                    .iter()
                    .any(|reason| matches!(reason, ModifierReason::DistinctBodyRegions { .. }))
            {
                reasons.push(ModifierReason::DistinctBodyRegions {
                    modifier,
                    column1: other,
                    regions: documentation.distinct_regions(),
                    column1_regions: column1_documentation.distinct_regions(),
                });
            }
        }
    }
    reasons.truncate(MAX_MODIFIERS_PER_LINE);
    reasons
}
